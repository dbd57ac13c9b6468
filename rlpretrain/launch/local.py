"""launcher=local: the learner and the rollout engine in this process (the engine colocated)."""

from __future__ import annotations

from rlpretrain.launch.placement import Placement
from rlpretrain.learner.base import LEARNERS
from rlpretrain.rollout.base import ROLLOUT_ENGINES
from rlpretrain.rollout.sync import resolve_transport


def place_local(cfg, policy, tokenizer) -> Placement:
    """The engine generates from the learner's module (transport `shared`), or from a copy of its
    weights (`reload`)."""
    import rlpretrain.learner.deepspeed  # noqa: F401  (registers it; deepspeed itself is imported on use)
    import rlpretrain.learner.torch  # noqa: F401
    import rlpretrain.rollout.hf  # noqa: F401  (registers the engines; vllm is imported on use)
    import rlpretrain.rollout.vllm  # noqa: F401

    learner = LEARNERS.get(cfg.learner.name)(cfg.learner, policy, total_steps=cfg.trainer.max_steps)
    engine = ROLLOUT_ENGINES.get(cfg.rollout.name)(cfg.rollout, learner.module, tokenizer)
    return Placement(learner, engine, resolve_transport(cfg.sync, engine, learner))
