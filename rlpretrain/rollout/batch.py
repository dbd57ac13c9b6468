"""A batch of scored rollouts: what a method hands to the algorithm, and what a dump records.

Batches compose: `select` takes samples out of one, `concat` joins several (e.g. dynamic sampling's
rounds, or self-play's propose and solve batches).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

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
    # the sampling temperature; the update refuses a batch scored at another one (None: not recorded)
    temperature: Optional[float] = None
    stats: dict[str, float] = field(default_factory=dict)  # the method's per-batch metrics, logged with the step's
    # per completion token: 1 where the policy sampled it, 0 where the method wrote it (e.g. AZR's
    # scaffold fences between blocks); only sampled tokens are trained. None: every token was sampled.
    completion_mask: Optional[list[list[int]]] = None

    def __len__(self) -> int:
        return len(self.prompt_ids)

    def _per_sample(self) -> dict[str, list]:
        """Every per-sample field by name (columns as `columns/<key>`), each checked to have one entry per
        sample. An engine that reports no log-probs may leave `sampling_logprobs` empty: [] per sample."""
        n = len(self)
        fields = {"prompt_ids": self.prompt_ids, "completion_ids": self.completion_ids,
                  "sampling_logprobs": self.sampling_logprobs or [[] for _ in range(n)],
                  "finish_reasons": self.finish_reasons, "rewards": self.rewards, "group": self.group}
        for name, values in (("role", self.role), ("advantages", self.advantages),
                             ("completion_mask", self.completion_mask)):
            if values is not None:
                fields[name] = values
        fields.update({f"columns/{key}": values for key, values in self.columns.items()})
        for name, values in fields.items():
            if len(values) != n:
                raise ValueError(f"RolloutBatch.{name} has {len(values)} entries for {n} samples")
        if self.completion_mask is not None:
            bad = next((i for i, (m, c) in enumerate(zip(self.completion_mask, self.completion_ids)) if len(m) != len(c)), None)
            if bad is not None:
                raise ValueError(f"RolloutBatch.completion_mask[{bad}] has {len(self.completion_mask[bad])} entries for "
                                 f"{len(self.completion_ids[bad])} completion tokens")
        return fields

    def trained_lengths(self) -> list[int]:
        """Completion tokens the loss covers, per sample (the sampled ones)."""
        if self.completion_mask is None:
            return [len(c) for c in self.completion_ids]
        return [sum(m) for m in self.completion_mask]

    def select(self, indices: Sequence[int]) -> RolloutBatch:
        """The samples at `indices`, in that order, every per-sample field and column with them. Group and
        role ids are kept as they are; the batch-level fields (policy version, temperature, timings, stats)
        are copied."""
        fields = {name: [values[i] for i in indices] for name, values in self._per_sample().items()}
        columns = {key[len("columns/"):]: fields.pop(key) for key in list(fields) if key.startswith("columns/")}
        return RolloutBatch(**fields, policy_version=self.policy_version, columns=columns,
                            timings=dict(self.timings), temperature=self.temperature, stats=dict(self.stats))

    @staticmethod
    def concat(batches: Sequence[RolloutBatch]) -> RolloutBatch:
        """One batch of all the samples, in order. Group ids are renumbered 0, 1, ... in order of first
        appearance, batch after batch, so groups of different batches never share an id (role ids are
        labels, e.g. AZR's task x role, and are kept). Timings are summed per key (the time all the parts
        took); stats are merged, and a key two batches give different values is an error. The batches must
        share a policy version and a temperature, and agree on which optional fields and columns they have."""
        if not batches:
            raise ValueError("RolloutBatch.concat needs at least one batch")
        first = batches[0]
        for what, why in (("policy_version", "one batch is sampled by one policy (the update's π_old)"),
                          ("temperature", "one batch is sampled and scored at one temperature")):
            values = [getattr(b, what) for b in batches]
            if len(set(values)) > 1:
                raise ValueError(f"RolloutBatch.concat: the batches have different {what}s {values}; {why}")
        parts = [b._per_sample() for b in batches]
        for b, fields in zip(batches[1:], parts[1:]):
            if fields.keys() != parts[0].keys():
                differ = sorted(fields.keys() ^ parts[0].keys())
                raise ValueError(f"RolloutBatch.concat: the batches do not have the same fields and columns "
                                 f"(only some have {', '.join(differ)})")
        joined = {name: [v for fields in parts for v in fields[name]] for name in parts[0]}
        renumbered: dict[tuple[int, int], int] = {}
        joined["group"] = [renumbered.setdefault((k, g), len(renumbered))
                           for k, fields in enumerate(parts) for g in fields["group"]]
        columns = {key[len("columns/"):]: joined.pop(key) for key in list(joined) if key.startswith("columns/")}
        timings: dict[str, float] = {}
        stats: dict[str, float] = {}
        for b in batches:
            for key, seconds in b.timings.items():
                timings[key] = timings.get(key, 0.0) + seconds
            for key, value in b.stats.items():
                if stats.setdefault(key, value) != value:
                    raise ValueError(f"RolloutBatch.concat: the batches' stats give '{key}' different values "
                                     f"({stats[key]} and {value}); combine or rename them before joining")
        return RolloutBatch(**joined, policy_version=first.policy_version, columns=columns, timings=timings,
                            temperature=first.temperature, stats=stats)

    def to_tensors(self, pad_id: int) -> dict[str, torch.Tensor]:
        """Right-padded prompt+completion rows; the loss covers the sampled completion tokens only.
        `sampling_logprobs` is there when the engine reported a log-prob for every completion token."""
        self._per_sample()  # the shapes agree
        rows = [p + c for p, c in zip(self.prompt_ids, self.completion_ids)]
        masks = self.completion_mask or [[1] * len(c) for c in self.completion_ids]
        loss_rows = [[0] * len(p) + list(m) for p, m in zip(self.prompt_ids, masks)]
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
            if self.completion_mask is not None:
                rec["completion_mask"] = self.completion_mask[i]
            for key, values in self.columns.items():
                value = values[i]
                rec[key] = value.item() if isinstance(value, torch.Tensor) and value.dim() == 0 else value
            out.append(rec)
        return out
