"""What a launcher hands the loop: where the learner, the engine and the weights' path between them are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from rlpretrain.checks import require
from rlpretrain.learner.base import Learner
from rlpretrain.rollout.base import RolloutEngine
from rlpretrain.rollout.sync import WeightTransport


@dataclass
class Placement:
    learner: Learner
    engine: RolloutEngine
    transport: WeightTransport  # chosen with the placement, never guessed from the engine later


@dataclass
class LauncherConfig:
    """The `launcher` group: where the learner ranks and rollout workers run (rlpretrain/launch/)."""
    name: str = "local"  # local: this process | ray: Ray actors, on one machine or a cluster
    address: Optional[str] = None  # ray: an existing cluster ("auto", "ray://host:10001"); null: start a local one
    num_learners: int = 1  # learner ranks (data parallel; learner=deepspeed when more than one)
    num_rollout_workers: int = 1  # separate engines; prompts are split between them
    learner_cpus: float = 1.0
    learner_gpus: Optional[float] = None  # null: an equal share of the GPUs over all actors, at most 1 (launch/ray.py)
    worker_cpus: float = 1.0
    worker_gpus: Optional[float] = None
    verify_sync: bool = False  # after every sync, compare a checksum of each worker's weights with the learner's

    def __post_init__(self):
        require(self.num_learners >= 1, "num_learners", ">= 1", self.num_learners)
