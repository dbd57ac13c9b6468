"""The method interface: what to roll out and how to score it. One loop serves every method.

A method's life in the loop (rlpretrain/loop.py):

    Method(cfg, ctx)                 build: data, rewards, anything that needs no engine
    load_state_dict / load_models    on resume
    prepare(engine)                  once, before the first step (e.g. AZR's seeding phase)
    per step: rollout(step, engine) -> metrics(batch) ; on_optimizer_step() after every learner step
    close()                          always, in a `finally` (worker pools, open files)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import MISSING

from rlpretrain.registry import Registry
from rlpretrain.rollout.base import RolloutEngine
from rlpretrain.rollout.batch import RolloutBatch

METHODS: Registry = Registry("method")


@dataclass
class RewardSpec:
    """One entry of an RL method's `rewards` list (rewards/registry.py builds the functions)."""
    name: str = MISSING  # a registered reward name or a dotted path to a function
    weight: float = 1.0
    conversational: bool = False  # pass prompts/completions as chat messages (TRL's conversational form)


class MethodContext:
    """What a method may see of the learner: the tokenizer, the policy to score with (never to
    update through), its version and its whole weights. Nothing else: a method that steps the
    optimizer or reads its state would break the loop's accounting."""

    def __init__(self, tokenizer, learner, max_tokens_per_micro_batch: int):
        self.tokenizer = tokenizer
        self._learner = learner
        self.max_tokens_per_micro_batch = max_tokens_per_micro_batch

    @property
    def policy(self) -> torch.nn.Module:
        return self._learner.module

    @property
    def version(self) -> int:
        """Optimizer steps taken: the policy_version of the weights that generate next."""
        return self._learner.version

    @property
    def device(self) -> torch.device:
        return self._learner.device

    def named_weights(self):
        """(name, whole tensor) pairs of the current policy (ZeRO-3 gathered, LoRA merged)."""
        return self._learner.named_weights()

    @property
    def pad_id(self) -> int:
        t = self.tokenizer
        return t.pad_token_id if t.pad_token_id is not None else t.eos_token_id


class Method(ABC):
    def __init__(self, cfg, ctx: MethodContext):
        self.ctx = ctx

    def prepare(self, engine: RolloutEngine) -> None:
        """Once, after resume and before the first step; may generate through the engine."""

    @abstractmethod
    def rollout(self, step: int, engine: RolloutEngine) -> RolloutBatch:
        """Choose prompts, generate through the engine, score with the rewards."""

    def metrics(self, batch: RolloutBatch) -> dict[str, float]:
        return {}

    def on_optimizer_step(self) -> None:
        """Called after every learner step (ppo_epochs x mini_batches per batch), e.g. an EMA teacher's update."""

    def close(self) -> None:
        """Release what the method holds (worker pools, trackers); called even when the run fails."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def save_models(self, directory: Path) -> None:
        """Save method-owned models (Hugging Face format) next to the policy in a checkpoint."""

    def load_models(self, directory: Path) -> None:
        pass
