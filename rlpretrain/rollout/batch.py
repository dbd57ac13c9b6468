"""A batch of scored rollouts: what a method hands to the algorithm, and what a dump records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from rlpretrain.learner.microbatch import pad_right


@dataclass
class RolloutBatch:
    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    sampling_logprobs: list[list[float]]
    finish_reasons: list[str]
    rewards: list[float]
    group: list[int]  # samples of one prompt share a group id (the baseline's scope)
    policy_version: int  # optimizer steps the generating weights had taken
    role: Optional[list[int]] = None  # whitening groups, e.g. AZR's task x role
    columns: dict[str, list[Any]] = field(default_factory=dict)  # per-sample extras (reward terms, ...)
    advantages: Optional[list[float]] = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, e.g. generate / score

    def __len__(self) -> int:
        return len(self.prompt_ids)

    def to_tensors(self, pad_id: int) -> dict[str, torch.Tensor]:
        """Right-padded prompt+completion rows; the loss covers completion tokens only. `sampling_logprobs`
        is there when the engine reported a log-prob for every completion token."""
        rows = [p + c for p, c in zip(self.prompt_ids, self.completion_ids)]
        loss_rows = [[0] * len(p) + [1] * len(c) for p, c in zip(self.prompt_ids, self.completion_ids)]
        batch = {
            "input_ids": pad_right(rows, pad_id),
            "attention_mask": pad_right([[1] * len(r) for r in rows], 0),
            "loss_mask": pad_right(loss_rows, 0, dtype=torch.float32),
            "prompt_len": torch.tensor([len(p) for p in self.prompt_ids]),  # lets G samples share one prompt pass
        }
        if len(self.sampling_logprobs) == len(self) and all(
                len(lp) == len(c) for lp, c in zip(self.sampling_logprobs, self.completion_ids)):
            # the engine's log p of each completion token, at its position (as the learner's log-probs)
            sampled = [[0.0] * len(p) + list(lp) for p, lp in zip(self.prompt_ids, self.sampling_logprobs)]
            batch["sampling_logprobs"] = pad_right(sampled, 0.0, dtype=torch.float32)
        if self.advantages is not None:
            batch["advantages"] = torch.tensor(self.advantages, dtype=torch.float32)
        return batch

    def records(self) -> list[dict[str, Any]]:
        out = []
        for i in range(len(self)):
            rec = {
                "prompt_ids": self.prompt_ids[i], "completion_ids": self.completion_ids[i],
                "sampling_logprobs": self.sampling_logprobs[i], "finish_reason": self.finish_reasons[i],
                "reward": self.rewards[i], "group": self.group[i], "policy_version": self.policy_version,
                "advantage": None if self.advantages is None else self.advantages[i],
            }
            if self.role is not None:
                rec["role"] = self.role[i]
            for key, values in self.columns.items():
                value = values[i]
                rec[key] = value.item() if isinstance(value, torch.Tensor) and value.dim() == 0 else value
            out.append(rec)
        return out
