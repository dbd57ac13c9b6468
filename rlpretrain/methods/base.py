"""The method interface: what to roll out and how to score it. One loop serves every method."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from rlpretrain.registry import Registry
from rlpretrain.rollout.base import RolloutEngine
from rlpretrain.rollout.batch import RolloutBatch

METHODS: Registry = Registry("method")


class Method(ABC):
    @abstractmethod
    def rollout(self, step: int, engine: RolloutEngine) -> RolloutBatch:
        """Choose prompts, generate through the engine, score with the rewards."""

    def metrics(self, batch: RolloutBatch) -> dict[str, float]:
        return {}

    def on_policy_updated(self) -> None:
        """Called after every optimizer step (e.g. an EMA teacher's update)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def save_models(self, directory: Path) -> None:
        """Save method-owned models (Hugging Face format) next to the policy in a checkpoint."""

    def load_models(self, directory: Path) -> None:
        pass
