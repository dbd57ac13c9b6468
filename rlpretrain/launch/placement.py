"""What a launcher hands the loop: where the learner, the engine and the weights' path between them are."""

from __future__ import annotations

from dataclasses import dataclass

from rlpretrain.learner.base import Learner
from rlpretrain.rollout.base import RolloutEngine
from rlpretrain.rollout.sync import WeightTransport


@dataclass
class Placement:
    learner: Learner
    engine: RolloutEngine
    transport: WeightTransport  # chosen with the placement, never guessed from the engine later
