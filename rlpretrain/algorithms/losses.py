"""Token-level quantities, loss aggregation, policy losses, KL penalties and the next-token loss.

Shapes: N sequences, L positions, V vocabulary. `mask` is 1 on the positions that are trained
(any dtype; nonzero counts as 1). Callers do the one-position shift between logits and labels.
Every [N, L] loss returned here is 0 outside the mask, and finite there even when the log-probs
at padded positions are garbage, so that neither the value nor its gradient can turn into NaN.
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch
from torch import Tensor

from rlpretrain.registry import Registry

# exp() of a log-ratio beyond this overflows nothing in float32 yet is far past any clip range;
# the cap keeps a diverged token (or a padded one) from producing inf·0 = NaN.
_LOG_RATIO_LIMIT = 20.0


# --- per-token log-probabilities -------------------------------------------------------------

def token_logprobs(logits: Tensor, labels: Tensor, temperature: float = 1.0) -> Tensor:
    """log softmax(logits / T)[label] as logit[label] − logsumexp(logits): no [N, L, V] log-softmax kept."""
    if temperature != 1.0:  # dividing copies the [N, L, V] logits; skip it when it changes nothing
        logits = logits / temperature
    picked = logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def entropy_from_logits(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """H = −Σ_v p_v log p_v with p = softmax(logits / T), written as logsumexp(z) − Σ_v p_v z_v."""
    logits = logits / temperature
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(dim=-1)


def next_token_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-token cross-entropy −log softmax(logits)[label], [N, L]; aggregate with agg_numerator/agg_denominator."""
    return -token_logprobs(logits, labels)


# --- aggregation ----------------------------------------------------------------------------

LOSS_AGG_MODES = ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm")


def _check_mode(mode: str) -> None:
    if mode not in LOSS_AGG_MODES:
        raise ValueError(f"unknown loss aggregation '{mode}'; available: {', '.join(LOSS_AGG_MODES)}")


def agg_numerator(loss_mat: Tensor, mask: Tensor, mode: str, norm_const: float | None = None) -> Tensor:
    """The sum part of an aggregated loss; sum(numerators) / sum(agg_denominator) over micro-batches
    equals the full-batch loss, so a micro-batched step computes the same gradient as one big one.

    - token_mean: Σ_{i,t} m·ℓ (denominator: number of tokens). Every token weighs the same.
    - seq_mean_token_mean: Σ_i (Σ_t m·ℓ / Σ_t m) (denominator: number of sequences with ≥1 token).
      Every sequence weighs the same (GRPO's original 1/|o_i| normalisation; RLP §3).
    - seq_mean_token_sum_norm: Σ_i Σ_t m·ℓ / norm_const (denominator: sequences with ≥1 token).
      Dr. GRPO (arXiv 2503.20783): a constant instead of the length, e.g. the max response length,
      so that long wrong answers are not penalised less per token.
    Sequences without tokens (padding rows) contribute nothing to either part.
    """
    _check_mode(mode)
    mask = mask != 0
    masked = torch.where(mask, loss_mat, torch.zeros_like(loss_mat))
    if mode == "token_mean":
        return masked.sum()
    if mode == "seq_mean_token_mean":
        return (masked.sum(dim=-1) / mask.sum(dim=-1).clamp(min=1)).sum()
    if norm_const is None:
        raise ValueError("loss aggregation 'seq_mean_token_sum_norm' needs norm_const (e.g. the max response length)")
    return masked.sum() / norm_const


def agg_denominator(mask: Tensor, mode: str) -> float:
    """The count part of an aggregated loss (see agg_numerator): tokens, or sequences with ≥1 token."""
    _check_mode(mode)
    mask = mask != 0
    if mode == "token_mean":
        return float(mask.sum())
    return float(mask.any(dim=-1).sum())


def aggregate(loss_mat: Tensor, mask: Tensor, mode: str, norm_const: float | None = None) -> Tensor:
    """The aggregated loss of one batch; 0 (not NaN) when the mask is empty."""
    return agg_numerator(loss_mat, mask, mode, norm_const) / max(agg_denominator(mask, mode), 1.0)


# --- KL penalties ---------------------------------------------------------------------------

KL_ESTIMATORS = ("k1", "k2", "k3")


def kl_penalty(logprobs: Tensor, ref_logprobs: Tensor, estimator: str) -> Tensor:
    """Per-token estimators of KL(π_θ ‖ π_ref) on tokens sampled from π_θ (Schulman, "Approximating
    KL divergence", 2020), with δ = log π_θ − log π_ref:

    - k1 = δ: unbiased, high variance, can be negative.
    - k2 = δ²/2: biased, low variance; its gradient is that of the true KL to first order.
    - k3 = exp(−δ) + δ − 1 = exp(ref − logp) − (ref − logp) − 1: unbiased and ≥ 0.
    """
    delta = logprobs - ref_logprobs
    if estimator == "k1":
        return delta
    if estimator == "k2":
        return 0.5 * delta ** 2
    if estimator == "k3":
        delta = delta.clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)  # exp() of garbage at padded positions
        return torch.exp(-delta) + delta - 1
    raise ValueError(f"unknown KL estimator '{estimator}'; available: {', '.join(KL_ESTIMATORS)}")


# --- policy losses --------------------------------------------------------------------------

class PolicyLossConfig(Protocol):
    """What a policy loss reads from its config: the `algorithm` node (config.AlgorithmConfig), where a
    new loss's own knobs go too. Every policy loss has the signature

        fn(logprobs: Tensor[N, L], old_logprobs: Tensor[N, L], advantages: Tensor[N] | Tensor[N, L],
           mask: Tensor[N, L], cfg: PolicyLossConfig) -> (loss [N, L], stats)
    """

    clip_low: float
    clip_high: float


PolicyLoss = Callable[[Tensor, Tensor, Tensor, Tensor, PolicyLossConfig], tuple[Tensor, dict[str, Tensor]]]

POLICY_LOSSES: Registry[PolicyLoss] = Registry("policy loss")
register_policy_loss = POLICY_LOSSES.register


def _masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    return torch.where(mask, x, torch.zeros_like(x)).sum() / mask.sum().clamp(min=1)


def _clipped_objective(ratio: Tensor, log_ratio: Tensor, advantages: Tensor, mask: Tensor,
                       clip_low: float, clip_high: float) -> tuple[Tensor, dict[str, Tensor]]:
    """−min(ρA, clip(ρ, 1−ε_low, 1+ε_high)·A), 0 outside the mask, and its statistics.

    The two ε are separate for DAPO's clip-higher (arXiv 2503.14476): a larger ε_high leaves
    low-probability tokens room to grow, which keeps entropy from collapsing.
    `log_ratio` is log π_θ − log π_old per token (for the statistics only).
    """
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1)  # a sequence's advantage applies to all its tokens
    advantages = advantages.to(ratio.dtype)
    unclipped = ratio * advantages
    clipped = ratio.clamp(1 - clip_low, 1 + clip_high) * advantages
    loss = -torch.minimum(unclipped, clipped)
    loss = torch.where(mask, loss, torch.zeros_like(loss))
    with torch.no_grad():
        # approx_kl: k3 with the roles swapped, ρ − 1 − log ρ, an unbiased, non-negative estimate
        # of KL(π_old ‖ π_θ) on tokens sampled from π_old (Schulman 2020).
        stats = {
            "clipfrac": _masked_mean((clipped < unclipped).to(ratio.dtype), mask),
            "approx_kl": _masked_mean(torch.expm1(log_ratio) - log_ratio, mask),
            "ratio_mean": _masked_mean(ratio, mask),
        }
    return loss, stats


@register_policy_loss("ppo_clip")
def ppo_clip(logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor,
             cfg: PolicyLossConfig) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO's clipped surrogate (Schulman et al., arXiv 1707.06347) with a token-level ratio
    ρ_t = exp(log π_θ(y_t) − log π_old(y_t)) and DAPO's asymmetric clip range.

    stats: clipfrac (fraction of masked tokens where the clipped term is the active, smaller one,
    i.e. whose gradient is cut), approx_kl (k3 estimate of KL(π_old ‖ π_θ)), ratio_mean.
    """
    mask = mask != 0
    log_ratio = torch.where(mask, logprobs - old_logprobs, torch.zeros_like(logprobs))
    log_ratio = log_ratio.clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)
    return _clipped_objective(torch.exp(log_ratio), log_ratio, advantages, mask, cfg.clip_low, cfg.clip_high)


@register_policy_loss("gspo")
def gspo(logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor,
         cfg: PolicyLossConfig) -> tuple[Tensor, dict[str, Tensor]]:
    """GSPO (Zheng et al., arXiv 2507.18071): a sequence-level, length-normalised ratio
    s_i = exp(mean_t (log π_θ(y_t) − log π_old(y_t))), clipped per sequence.

    Written in the paper's GSPO-token form s_{i,t} = sg[s_i]·exp(log π_θ(y_t) − sg[log π_θ(y_t)]):
    its value is s_i at every token of sequence i, and ∇s_{i,t} = s_i·∇log π_θ(y_t), so with a
    per-sequence advantage and seq_mean_token_mean aggregation it is exactly GSPO's gradient.
    Per-token advantages ([N, L]) are allowed, as GSPO-token permits. Same stats as ppo_clip, per
    token (clipfrac is then the fraction of tokens in clipped sequences).
    """
    mask = mask != 0
    token_log_ratio = torch.where(mask, logprobs - old_logprobs, torch.zeros_like(logprobs))
    seq_log_ratio = token_log_ratio.sum(dim=-1, keepdim=True) / mask.sum(dim=-1, keepdim=True).clamp(min=1)
    seq_log_ratio = seq_log_ratio.clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)
    live = torch.where(mask, logprobs, torch.zeros_like(logprobs))
    log_ratio = seq_log_ratio.detach() + live - live.detach()
    token_log_ratio = token_log_ratio.clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)  # approx_kl's exp()
    return _clipped_objective(torch.exp(log_ratio), token_log_ratio, advantages, mask, cfg.clip_low, cfg.clip_high)
