"""Split a right-padded batch into micro-batches that fit a token budget."""

from __future__ import annotations

import torch

from rlpretrain.learner.base import TensorBatch


def length_buckets(lengths: list[int], max_tokens: int, min_fill: float = 0.5) -> list[list[int]]:
    """Group row indices into batches of similar length, each (rows x its longest) <= max_tokens.

    Rows are taken longest first; a batch closes when the budget is full or when the next row is
    shorter than `min_fill` x the batch's longest (so short rows are not padded to long ones).
    A single row over the budget forms its own batch.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # stable: ties keep their order
    buckets, chunk = [], []
    for i in order:
        longest = lengths[chunk[0]] if chunk else lengths[i]
        if chunk and ((len(chunk) + 1) * longest > max_tokens or lengths[i] < min_fill * longest):
            buckets.append(chunk)
            chunk = []
        chunk.append(i)
    if chunk:
        buckets.append(chunk)
    return buckets


def split_by_tokens(batch: TensorBatch, max_tokens: int, min_fill: float = 0.5) -> list[TensorBatch]:
    """Micro-batches from `length_buckets`, each trimmed to its longest row.

    The loss is a sum over micro-batches, so their order does not change it.
    """
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    return [_select(batch, rows, lengths[rows[0]]) for rows in length_buckets(lengths, max_tokens, min_fill)]


def _select(batch: TensorBatch, rows: list[int], width: int) -> TensorBatch:
    index = torch.tensor(rows)
    full_width = batch["attention_mask"].shape[1]
    out = {}
    for key, value in batch.items():
        value = value[index]
        if value.dim() >= 2 and value.shape[1] == full_width:
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
