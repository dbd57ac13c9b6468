"""One forward pass over rows that share prefixes: each distinct prefix runs once, its KV cache is
copied to the rows that continue it, and only the continuations run per row.

RLP scores and trains G thoughts per context; RPT G responses per context. Contexts are long and
thoughts short, so most of a plain forward pass recomputes the same context G times. The shared
pass gives the same logits (up to float summation order) and, with autograd on, the same gradients:
the copied cache stays in the graph, so each row's gradient flows back into its prefix.
"""

from __future__ import annotations

import torch


def distinct_prefixes(prefixes: list[tuple[int, ...]]) -> tuple[list[tuple[int, ...]], list[int]]:
    """(the distinct prefixes in first-seen order, for each row the index of its prefix)."""
    index: dict[tuple[int, ...], int] = {}
    owner = [index.setdefault(p, len(index)) for p in prefixes]
    return list(index), owner


def can_share(module) -> bool:
    """Gradient checkpointing drops the KV cache in training mode: share prefixes only without it."""
    module = getattr(module, "module", module)  # a DeepSpeed engine: the model it wraps
    flag = "is_activation_checkpointing" if hasattr(type(module), "is_activation_checkpointing") else "is_gradient_checkpointing"
    return not (module.training and getattr(module, flag, False))


def suffix_view(micro: dict[str, torch.Tensor]):
    """Right-padded prompt+completion rows with a `prompt_len` column, cut for a shared-prefix pass.

    Returns (view, prefixes, owner): in `view` every per-token tensor holds each row's window from
    its last prompt token on (that token's logits predict the first completion token), right-padded;
    the prefixes are the distinct prompts minus their last token. None when no prompt repeats (a
    plain pass is cheaper) or a prompt has a single token.
    """
    ids = micro["input_ids"]
    full_width = ids.shape[1]
    lengths = micro["attention_mask"].sum(-1)
    start = micro["prompt_len"].to(ids.device) - 1
    if bool((start < 1).any()):
        return None
    rows = ids.tolist()  # one copy to the host (on a GPU, not one per row)
    prefixes, owner = distinct_prefixes([tuple(rows[i][:s]) for i, s in enumerate(start.tolist())])
    if len(prefixes) == len(owner):
        return None
    width = int((lengths - start).max())
    index = start[:, None] + torch.arange(width, device=ids.device)[None]
    valid = index < lengths[:, None]
    index = index.clamp(max=full_width - 1)
    view = {}
    for key, value in micro.items():
        if value.dim() == 2 and value.shape[1] == full_width:
            value = value.gather(1, index).masked_fill(~valid, 0)
        view[key] = value
    view["attention_mask"] = valid.to(micro["attention_mask"].dtype)
    return view, prefixes, owner


def shared_prefix_forward(module, prefixes: list[tuple[int, ...]], owner: list[int], suffix_ids: torch.Tensor,
                          suffix_mask: torch.Tensor, pad_id: int, logits_to_keep: int | None = None,
                          hidden: bool = False) -> torch.Tensor:
    """Logits over the suffix rows [N, S or logits_to_keep, V] (fp32); with `hidden`, the final hidden
    states [N, S, H] instead (the model's own LM head then runs on one position only).

    `prefixes` are distinct and non-empty; row i continues prefixes[owner[i]] with suffix_ids[i],
    padded on either side (suffix_mask marks its tokens; positions follow the mask).
    """
    device = suffix_ids.device
    width = max(len(p) for p in prefixes)
    prefix_ids = torch.full((len(prefixes), width), pad_id, dtype=torch.long, device=device)
    prefix_mask = torch.zeros_like(prefix_ids)
    for k, p in enumerate(prefixes):  # left padding, as in generation
        prefix_ids[k, width - len(p):] = torch.tensor(p, device=device)
        prefix_mask[k, width - len(p):] = 1
    prefix_pos = (prefix_mask.cumsum(-1) - 1).clamp(min=0)
    cache = module(input_ids=prefix_ids, attention_mask=prefix_mask, position_ids=prefix_pos, use_cache=True,
                   logits_to_keep=1).past_key_values
    rows = torch.tensor(owner, device=device)
    cache.batch_select_indices(rows)  # indexing with repeats: a differentiable copy per row
    lengths = prefix_mask.sum(-1)[rows]
    positions = lengths[:, None] + (suffix_mask.cumsum(-1) - 1).clamp(min=0)
    mask = torch.cat([prefix_mask[rows], suffix_mask.to(prefix_mask.dtype)], dim=1)
    extra = {"logits_to_keep": logits_to_keep} if logits_to_keep is not None else {}
    if hidden:
        extra = {"logits_to_keep": 1, "output_hidden_states": True}
    out = module(input_ids=suffix_ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                 use_cache=True, **extra)
    return out.hidden_states[-1] if hidden else out.logits.float()
