"""Split a right-padded batch into micro-batches that fit a token budget."""

from __future__ import annotations

import torch

from rlpretrain.learner.base import TensorBatch


def split_by_tokens(batch: TensorBatch, max_tokens: int) -> list[TensorBatch]:
    """Consecutive rows, each micro-batch's rows x (its longest row) <= max_tokens.

    Each micro-batch is trimmed to its own longest row, so short rows do not pay for long ones.
    A single row longer than the budget still forms its own micro-batch.
    """
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    n = len(lengths)
    micro, start = [], 0
    while start < n:
        end, longest = start + 1, lengths[start]
        while end < n and max(longest, lengths[end]) * (end + 1 - start) <= max_tokens:
            longest = max(longest, lengths[end])
            end += 1
        micro.append(_slice(batch, start, end, int(longest)))
        start = end
    return micro


def _slice(batch: TensorBatch, start: int, end: int, width: int) -> TensorBatch:
    out = {}
    for key, value in batch.items():
        value = value[start:end]
        if value.dim() >= 2 and value.shape[1] == batch["attention_mask"].shape[1]:
            value = value[:, :width]
        out[key] = value
    return out


def pad_right(rows: list[list[int]], pad: int | float, dtype=torch.long) -> torch.Tensor:
    width = max((len(r) for r in rows), default=0)
    out = torch.full((len(rows), width), pad, dtype=dtype)
    for i, row in enumerate(rows):
        if row:
            out[i, : len(row)] = torch.tensor(row, dtype=dtype)
    return out
