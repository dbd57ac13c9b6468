"""The learner interface: owns the trainable module, the optimizer and the LR schedule.

A learner knows nothing about RL. It takes a padded tensor batch and a `Loss`, and turns them into
one optimizer step, splitting the batch into micro-batches by a token budget. The loss is given
as numerator/denominator so that gradient accumulation over micro-batches equals the full-batch
loss exactly (e.g. a token mean over the whole batch, not a mean of per-micro-batch means).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Protocol

import torch

from rlpretrain.learner.lora import is_lora, load_adapter, merged_named_weights, save_adapter
from rlpretrain.models.device import module_device
from rlpretrain.registry import Registry

LEARNERS: Registry = Registry("learner")
TensorBatch = dict[str, torch.Tensor]


class Loss(Protocol):
    def denominator(self, micro: TensorBatch) -> float:
        """This micro-batch's share of the global normaliser (computed from masks; no forward)."""

    def numerator(self, module: torch.nn.Module, micro: TensorBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """Forward pass; returns the un-normalised loss and stats for this micro-batch."""


class Learner(ABC):
    module: torch.nn.Module
    version: int  # optimizer steps taken: the policy_version of weights that generate next

    @abstractmethod
    def train_step(self, batch: TensorBatch, loss: Loss) -> dict[str, float]:
        """One optimizer step over the whole batch. Returns averaged loss stats, grad norm, lr."""

    @abstractmethod
    def state_dict(self) -> dict:
        """Optimizer, scheduler and version: everything but the weights, for exact resume."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None: ...

    @property
    def device(self) -> torch.device:
        """Where the module runs: micro-batches (built on the CPU) are moved here before each forward."""
        return module_device(self.module)

    def gathered(self):
        """A context in which `module`'s parameters are whole (a sharded learner gathers them)."""
        return contextlib.nullcontext()

    def named_weights(self):
        """(name, whole tensor) for every weight under the Hugging Face model's names: what a rollout
        engine with weights of its own loads (rollout/sync.py). Consume it before the next step."""
        with self.gathered():
            named = merged_named_weights(self.module) if is_lora(self.module) else self.module.state_dict().items()
            seen = set()
            for name, tensor in named:
                if tensor.data_ptr() not in seen:  # tied weights (embeddings and LM head) go once
                    seen.add(tensor.data_ptr())
                    yield name, tensor

    def export_model(self, directory: Path) -> None:
        """The policy in Hugging Face format, loadable with `from_pretrained` (LoRA: merged)."""
        with self.gathered():
            if is_lora(self.module):
                merged = {name: t.contiguous() for name, t in merged_named_weights(self.module)}
                self.module.get_base_model().save_pretrained(directory, state_dict=merged, safe_serialization=True)
            else:
                self.module.save_pretrained(directory, safe_serialization=True)

    def save_checkpoint(self, directory: Path) -> dict:
        """Write the policy to directory/policy (LoRA: also the adapters to directory/adapter, and
        any files of the learner's own under directory); return the state for the checkpoint's state.pt."""
        self.export_model(directory / "policy")
        if is_lora(self.module):
            save_adapter(self.module, directory / "adapter")
        return self.state_dict()

    def load_checkpoint(self, directory: Path, state: dict) -> None:
        if is_lora(self.module):
            load_adapter(self.module, directory / "adapter")
        else:
            from transformers import AutoModelForCausalLM

            loaded = AutoModelForCausalLM.from_pretrained(directory / "policy",
                                                          dtype=next(self.module.parameters()).dtype)
            self.module.load_state_dict(loaded.state_dict())
        self.load_state_dict(state)
