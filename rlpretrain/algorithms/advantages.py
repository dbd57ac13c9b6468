"""Advantage estimators for critic-free policy gradients: one scalar advantage per sampled sequence.

Every estimator is registered by name and has the signature

    fn(rewards: Tensor[N] float, group: Tensor[N] long, role: Tensor[N] long | None = None,
       lengths: Tensor[N] long | None = None, eps: float = 1e-6, weighting: str = "sample") -> Tensor[N]

`group` identifies the prompt group (the G samples drawn from one context share an id); `role`
names a whitening group (only `trr_pp` uses it); `lengths` are the completions' token counts. Ids
may be any integers, groups may be non-contiguous and of unequal sizes. Standard deviations are the
unbiased ones (torch.std's default, as in TRL and verl); a group of one sample has no spread and
gets advantage 0.

`weighting` (config: `algorithm.adv_weighting`) chooses what a group's mean and std average over:
`sample` (every sequence counts once, the default) or `token` (every completion token counts once:
frequency weights, a sequence of L tokens counts as L copies of its reward, so the unbiased std
divides by the group's token count minus one). `rloo` is per sample only.
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


ADV_WEIGHTINGS = ("sample", "token")


def _weights(weighting: str, lengths: Tensor | None, rewards: Tensor) -> Tensor | None:
    """The frequency weight of each sample in its group's statistics; None: one each."""
    if weighting == "sample":
        return None
    if weighting != "token":
        raise ValueError(f"algorithm.adv_weighting must be one of {', '.join(ADV_WEIGHTINGS)}, got {weighting!r}")
    if lengths is None:
        raise ValueError("adv_weighting=token needs `lengths` (each completion's token count)")
    _check(rewards, lengths, "lengths")
    return lengths.to(rewards.dtype)


def _group_stats(values: Tensor, ids: Tensor, weights: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Per-sample (mean, unbiased std, size in samples) of the sample's group, vectorised over groups.

    With `weights`, frequency-weighted: mean = Σw·v / Σw, std² = Σw·(v − mean)² / (Σw − 1).
    Size-1 groups get std 0 (not torch.std's NaN) so that callers can zero them explicitly.
    """
    _, index, counts = torch.unique(ids, return_inverse=True, return_counts=True)
    w = torch.ones_like(values) if weights is None else weights
    # a group whose samples are all empty completions has Σw = 0: mean 0, no NaN
    n = torch.zeros(len(counts), dtype=values.dtype, device=values.device).index_add_(0, index, w).clamp(min=1)
    sums = torch.zeros_like(n).index_add_(0, index, w * values)
    mean = (sums / n)[index]
    squares = torch.zeros_like(sums).index_add_(0, index, w * (values - mean) ** 2)
    std = torch.sqrt(squares / (n - 1).clamp(min=1))[index]
    return mean, std, counts[index]


def check_weighting(estimator: str, weighting: str) -> None:
    """Fail when the update is built, not at its first batch: the estimator itself raises for a weighting
    it does not support, so run it once on two dummy samples."""
    ids = torch.zeros(2, dtype=torch.long)
    ADVANTAGE_ESTIMATORS.get(estimator)(torch.zeros(2), ids, role=ids, lengths=ids + 1, weighting=weighting)


@register_adv_est("rloo")
def rloo(rewards: Tensor, group: Tensor, role: Tensor | None = None, lengths: Tensor | None = None,
         eps: float = 1e-6, weighting: str = "sample") -> Tensor:
    """RLOO in RLP's form (RLP, arXiv 2510.01265, §3): A_i = G/(G−1)·(r_i − mean_{j∈group} r_j).

    This equals the leave-one-out baseline r_i − mean_{j≠i} r_j, without the std division.
    """
    _check(rewards, group, "group")
    if _weights(weighting, lengths, rewards) is not None:
        raise ValueError(f"rloo's leave-one-out baseline is per sample: algorithm.adv_weighting={weighting} is not "
                         "supported (grpo, dr_grpo, reinforce_pp and trr_pp support adv_weighting=token)")
    mean, _, size = _group_stats(rewards, group)
    g = size.to(rewards.dtype)
    return torch.where(size > 1, g / (g - 1).clamp(min=1) * (rewards - mean), torch.zeros_like(rewards))


@register_adv_est("grpo")
def grpo(rewards: Tensor, group: Tensor, role: Tensor | None = None, lengths: Tensor | None = None,
         eps: float = 1e-6, weighting: str = "sample") -> Tensor:
    """GRPO (DeepSeekMath, arXiv 2402.03300, §4.1.2): A_i = (r_i − mean_group r)/(std_group r + eps)."""
    _check(rewards, group, "group")
    mean, std, size = _group_stats(rewards, group, _weights(weighting, lengths, rewards))
    return torch.where(size > 1, (rewards - mean) / (std + eps), torch.zeros_like(rewards))


@register_adv_est("dr_grpo")
def dr_grpo(rewards: Tensor, group: Tensor, role: Tensor | None = None, lengths: Tensor | None = None,
            eps: float = 1e-6, weighting: str = "sample") -> Tensor:
    """Dr. GRPO (Liu et al., arXiv 2503.20783): A_i = r_i − mean_group r.

    Dropping the std division removes GRPO's question-level difficulty bias.
    """
    _check(rewards, group, "group")
    mean, _, _ = _group_stats(rewards, group, _weights(weighting, lengths, rewards))
    return rewards - mean


@register_adv_est("reinforce_pp")
def reinforce_pp(rewards: Tensor, group: Tensor, role: Tensor | None = None, lengths: Tensor | None = None,
                 eps: float = 1e-6, weighting: str = "sample") -> Tensor:
    """REINFORCE++ (Hu, arXiv 2501.03262): whitening over the whole batch, A_i = (r_i − mean r)/(std r + eps).

    Groups are ignored: the batch-level baseline is what distinguishes it from GRPO.
    """
    _check(rewards, group, "group")
    mean, std, size = _group_stats(rewards, torch.zeros_like(group), _weights(weighting, lengths, rewards))
    return torch.where(size > 1, (rewards - mean) / (std + eps), torch.zeros_like(rewards))


@register_adv_est("trr_pp")
def trr_pp(rewards: Tensor, group: Tensor, role: Tensor | None = None, lengths: Tensor | None = None,
           eps: float = 1e-6, weighting: str = "sample") -> Tensor:
    """Task-Relative REINFORCE++ (Absolute Zero, arXiv 2505.03335): whitening within each role.

    A_i = (r_i − mean_k r)/(std_k r + eps) over the samples k sharing sample i's `role` id, where a
    role id encodes one (task type, propose|solve) configuration, so each gets its own baseline.
    With weighting=token the role's mean and std count each completion token once.
    """
    if role is None:
        raise ValueError("trr_pp needs `role` (one whitening-group id per sample, e.g. task type x propose/solve)")
    _check(rewards, role, "role")
    mean, std, size = _group_stats(rewards, role, _weights(weighting, lengths, rewards))
    return torch.where(size > 1, (rewards - mean) / (std + eps), torch.zeros_like(rewards))
