"""The rl job: the learner and the engine placed by the launcher, then the generator-trainer loop."""

from __future__ import annotations

import rlpretrain.methods  # noqa: F401  (registers the methods)
from rlpretrain.jobs.launching import launched
from rlpretrain.loop import RunSummary, train
from rlpretrain.methods.base import METHODS


def rl_body(cfg, placer) -> RunSummary:
    return train(cfg, placer.place)


def run_rl(cfg) -> RunSummary:
    METHODS.get(cfg.method.name)  # a typo fails before Ray or a model starts
    return launched(cfg, rl_body)
