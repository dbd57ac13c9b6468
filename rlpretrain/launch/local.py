"""launcher=local: the learner and the rollout engine in this process (the engine colocated)."""

from __future__ import annotations

from rlpretrain.learner.base import LEARNERS
from rlpretrain.rollout.base import ROLLOUT_ENGINES


def build_local(cfg, policy, tokenizer):
    """(learner, engine): the engine generates from the learner's module, or from a copy of its weights."""
    learner = LEARNERS.get(cfg.learner.name)(cfg.learner, policy, total_steps=cfg.trainer.max_steps)
    engine = ROLLOUT_ENGINES.get(cfg.rollout.name)(cfg.rollout, learner.module, tokenizer)
    return learner, engine
