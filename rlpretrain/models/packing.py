"""Padding-free micro-batches: the real tokens of ragged rows packed into one row.

Positions restart at 0 for every row; from them transformers tells the rows apart (a new row is
where the position does not grow by one): flash-attention runs them as variable-length sequences,
and SDPA/eager build a block-diagonal causal mask (transformers.masking_utils,
find_packed_sequence_indices; only when the call has no attention mask and no KV cache, so run it
with use_cache=False). No token attends across rows and none is padding.
"""

from __future__ import annotations

import torch


def pack_rows(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(packed ids [1, T], their position ids [1, T], index [N, W]): index[i, j] is where row i's
    token j sits in the packed row (meaningful where attention_mask is 1). T = attention_mask.sum()."""
    mask = attention_mask != 0
    index = mask.flatten().long().cumsum(0).sub(1).view_as(input_ids)
    positions = mask.long().cumsum(1).sub(1)
    return input_ids[mask][None], positions[mask][None], index


def padding_fraction(attention_mask: torch.Tensor) -> float:
    """The share of a padded [N, W] batch's positions that are padding, which packing removes."""
    return 1.0 - float((attention_mask != 0).sum()) / max(attention_mask.numel(), 1)
