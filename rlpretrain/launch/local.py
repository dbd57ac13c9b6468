"""launcher=local: the learner and the rollout engine in this process (the engine colocated)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rlpretrain.launch.placement import Placement
from rlpretrain.learner.base import LEARNERS, Learner
from rlpretrain.rollout.base import ROLLOUT_ENGINES, RolloutEngine
from rlpretrain.rollout.sync import resolve_transport


def record_placement(run_dir, description: dict) -> None:
    """placement.json in the run directory: which process holds the learner and the engine (a job
    that asks for them one at a time adds to what is there)."""
    path = Path(run_dir) / "placement.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**known, **description}, indent=2))


def build_learner(cfg, model, total_steps: int) -> Learner:
    import rlpretrain.learner.deepspeed  # noqa: F401  (registers it; deepspeed itself is imported on use)
    import rlpretrain.learner.torch  # noqa: F401
    return LEARNERS.get(cfg.learner.name)(cfg.learner, model, total_steps=total_steps)


def build_engine(cfg, model, tokenizer) -> RolloutEngine:
    import rlpretrain.rollout.hf  # noqa: F401  (registers the engines; vllm itself is imported on use)
    import rlpretrain.rollout.vllm  # noqa: F401
    return ROLLOUT_ENGINES.get(cfg.rollout.name)(cfg.rollout, model, tokenizer)


class LocalPlacer:
    """What a job asks a launcher for, answered in this process."""

    name = "local"

    def learner(self, cfg, model, total_steps: int, run_dir) -> Learner:
        record_placement(run_dir, {"launcher": self.name, "learner": {"pid": os.getpid(), "ranks": 1}})
        return build_learner(cfg, model, total_steps)

    def engine(self, cfg, model, tokenizer, run_dir) -> RolloutEngine:
        record_placement(run_dir, {"launcher": self.name, "engine": {"pid": os.getpid(), "workers": 0}})
        return build_engine(cfg, model, tokenizer)

    def place(self, cfg, policy, tokenizer) -> Placement:
        """The engine generates from the learner's module (transport `shared`), or from a copy of its
        weights (`reload`)."""
        learner = self.learner(cfg, policy, cfg.trainer.max_steps, cfg.run_dir)
        engine = self.engine(cfg, learner.module, tokenizer, cfg.run_dir)
        return Placement(learner, engine, resolve_transport(cfg.sync, engine, learner))


def place_local(cfg, policy, tokenizer) -> Placement:
    return LocalPlacer().place(cfg, policy, tokenizer)
