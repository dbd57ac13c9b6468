"""Split a right-padded batch into micro-batches that fit a token budget."""

from __future__ import annotations

import torch

from rlpretrain.learner.base import TensorBatch
from rlpretrain.models.prefix_sharing import distinct_prefixes


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


def prefix_buckets(prefix_lens: list[int], suffix_lens: list[int], owner: list[int], max_tokens: int,
                   min_fill: float = 0.5) -> list[list[int]]:
    """Row batches for a shared-prefix pass (models/prefix_sharing.py): the rows of one prefix stay
    together, and a batch costs (distinct prefixes x longest prefix) + (rows x longest suffix) tokens.

    Prefixes are taken longest first; a batch closes when its cost would pass the budget or its
    fill (real tokens / cost) drop below `min_fill`. Only one row per prefix pays the prefix's
    padding, so whole batches are judged here, not rows as in `length_buckets`. A prefix whose
    rows alone exceed the budget forms its own batch.
    """
    units: dict[int, list[int]] = {}
    for i, o in enumerate(owner):
        units.setdefault(o, []).append(i)
    order = sorted(units.values(), key=lambda rows: -prefix_lens[rows[0]])  # stable: ties keep their order
    buckets, chunk = [], []
    n_prefixes = widest = longest_suffix = real = 0
    for rows in order:
        plen, slen = prefix_lens[rows[0]], max(suffix_lens[i] for i in rows)
        grown = (n_prefixes + 1, max(widest, plen), max(longest_suffix, slen), real + plen + sum(suffix_lens[i] for i in rows))
        cost = grown[0] * grown[1] + (len(chunk) + len(rows)) * grown[2]
        if chunk and (cost > max_tokens or grown[3] < min_fill * cost):
            buckets.append(chunk)
            chunk, grown = [], (1, plen, slen, plen + sum(suffix_lens[i] for i in rows))
        chunk += rows
        n_prefixes, widest, longest_suffix, real = grown
    if chunk:
        buckets.append(chunk)
    return buckets


def packed_buckets(lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Row batches for padding-free micro-batches (models/packing.py), where a batch costs its real
    tokens, not rows x longest: rows longest first, each into the first batch with room (first-fit
    decreasing). A single row over the budget forms its own batch."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # stable: ties keep their order
    buckets, used = [], []
    for i in order:
        k = next((k for k, u in enumerate(used) if u + lengths[i] <= max_tokens), len(buckets))
        if k == len(buckets):
            buckets.append([])
            used.append(0)
        buckets[k].append(i)
        used[k] += lengths[i]
    return buckets


def split_by_tokens(batch: TensorBatch, max_tokens: int, min_fill: float = 0.5, packed: bool = False) -> list[TensorBatch]:
    """Micro-batches from `length_buckets`, each trimmed to its longest row.

    With a `prompt_len` column the rows that share a prompt stay in one micro-batch (`prefix_buckets`),
    so the policy loss can run each prompt once. `packed` (learner.padding_free): the budget counts
    real tokens (`packed_buckets`). The loss is a sum over micro-batches, so their order does not change it.
    """
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    if packed:
        buckets = packed_buckets(lengths, max_tokens)
    elif "prompt_len" in batch:
        prefix_lens = (batch["prompt_len"] - 1).tolist()  # the last prompt token runs with the completion
        _, owner = distinct_prefixes([tuple(batch["input_ids"][i, :n].tolist()) for i, n in enumerate(prefix_lens)])
        buckets = prefix_buckets(prefix_lens, [n - p for n, p in zip(lengths, prefix_lens)], owner, max_tokens, min_fill)
    else:
        buckets = length_buckets(lengths, max_tokens, min_fill)
    return [_select(batch, rows, max(lengths[i] for i in rows)) for rows in buckets]


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
