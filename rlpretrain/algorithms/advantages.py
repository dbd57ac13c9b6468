"""Advantage estimators for critic-free policy gradients: one scalar advantage per sampled sequence.

Every estimator is registered by name and has the signature

    fn(rewards: Tensor[N] float, group: Tensor[N] long, role: Tensor[N] long | None = None,
       eps: float = 1e-6) -> Tensor[N]

`group` identifies the prompt group (the G samples drawn from one context share an id); `role`
names a whitening group (only `trr_pp` uses it). Ids may be any integers, groups may be
non-contiguous and of unequal sizes. Standard deviations are the unbiased ones (torch.std's
default, as in TRL and verl); a group of one sample has no spread and gets advantage 0.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from rlpretrain.registry import Registry

AdvantageEstimator = Callable[..., Tensor]

ADVANTAGE_ESTIMATORS: Registry[AdvantageEstimator] = Registry("advantage estimator")
register_adv_est = ADVANTAGE_ESTIMATORS.register


def _check(rewards: Tensor, ids: Tensor, what: str) -> None:
    if rewards.dim() != 1 or ids.shape != rewards.shape:
        raise ValueError(f"rewards and {what} must be 1-D of the same length, "
                         f"got {tuple(rewards.shape)} and {tuple(ids.shape)}")


def _group_stats(values: Tensor, ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-sample (mean, unbiased std, size) of the sample's group, vectorised over groups.

    Size-1 groups get std 0 (not torch.std's NaN) so that callers can zero them explicitly.
    """
    _, index, counts = torch.unique(ids, return_inverse=True, return_counts=True)
    n = counts.to(values.dtype)
    sums = torch.zeros(len(counts), dtype=values.dtype, device=values.device).index_add_(0, index, values)
    mean = (sums / n)[index]
    squares = torch.zeros_like(sums).index_add_(0, index, (values - mean) ** 2)
    std = torch.sqrt(squares / (n - 1).clamp(min=1))[index]
    return mean, std, counts[index]


@register_adv_est("rloo")
def rloo(rewards: Tensor, group: Tensor, role: Tensor | None = None, eps: float = 1e-6) -> Tensor:
    """RLOO in RLP's form (RLP, arXiv 2510.01265, §3): A_i = G/(G−1)·(r_i − mean_{j∈group} r_j).

    This equals the leave-one-out baseline r_i − mean_{j≠i} r_j, without the std division.
    """
    _check(rewards, group, "group")
    mean, _, size = _group_stats(rewards, group)
    g = size.to(rewards.dtype)
    return torch.where(size > 1, g / (g - 1).clamp(min=1) * (rewards - mean), torch.zeros_like(rewards))


@register_adv_est("grpo")
def grpo(rewards: Tensor, group: Tensor, role: Tensor | None = None, eps: float = 1e-6) -> Tensor:
    """GRPO (DeepSeekMath, arXiv 2402.03300, §4.1.2): A_i = (r_i − mean_group r)/(std_group r + eps)."""
    _check(rewards, group, "group")
    mean, std, size = _group_stats(rewards, group)
    return torch.where(size > 1, (rewards - mean) / (std + eps), torch.zeros_like(rewards))


@register_adv_est("dr_grpo")
def dr_grpo(rewards: Tensor, group: Tensor, role: Tensor | None = None, eps: float = 1e-6) -> Tensor:
    """Dr. GRPO (Liu et al., arXiv 2503.20783): A_i = r_i − mean_group r.

    Dropping the std division removes GRPO's question-level difficulty bias.
    """
    _check(rewards, group, "group")
    mean, _, _ = _group_stats(rewards, group)
    return rewards - mean


@register_adv_est("reinforce_pp")
def reinforce_pp(rewards: Tensor, group: Tensor, role: Tensor | None = None, eps: float = 1e-6) -> Tensor:
    """REINFORCE++ (Hu, arXiv 2501.03262): whitening over the whole batch, A_i = (r_i − mean r)/(std r + eps).

    Groups are ignored: the batch-level baseline is what distinguishes it from GRPO.
    """
    _check(rewards, group, "group")
    mean, std, size = _group_stats(rewards, torch.zeros_like(group))
    return torch.where(size > 1, (rewards - mean) / (std + eps), torch.zeros_like(rewards))


@register_adv_est("trr_pp")
def trr_pp(rewards: Tensor, group: Tensor, role: Tensor | None = None, eps: float = 1e-6) -> Tensor:
    """Task-Relative REINFORCE++ (Absolute Zero, arXiv 2505.03335): whitening within each role.

    A_i = (r_i − mean_k r)/(std_k r + eps) over the samples k sharing sample i's `role` id, where a
    role id encodes one (task type, propose|solve) configuration, so each gets its own baseline.
    """
    if role is None:
        raise ValueError("trr_pp needs `role` (one whitening-group id per sample, e.g. task type x propose/solve)")
    _check(rewards, role, "role")
    mean, std, size = _group_stats(rewards, role)
    return torch.where(size > 1, (rewards - mean) / (std + eps), torch.zeros_like(rewards))
