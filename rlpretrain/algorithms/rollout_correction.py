"""Rollout-learner mismatch: how far the engine's sampling log-probs are from the learner's, and
importance weights that correct the policy loss for it.

An engine that is not the learner's own module (vLLM, a Ray worker, a bf16 copy beside an fp32
learner) samples from a slightly different distribution π_sampler than the learner's π_old (the
learner's log-probs under the current weights, before the update). With δ = log π_old − log
π_sampler per completion token:

- `mismatch/kl`: mean of the k3 estimator exp(δ) − δ − 1 of KL(π_sampler ‖ π_old) on tokens drawn
  from π_sampler (Schulman 2020), as verl's `mismatch_k3_kl` (`compute_mismatch_metrics`,
  https://github.com/volcengine/verl, verl/trainer/ppo/mismatch_helper.py).
- `mismatch/abs_logp_diff_mean`: mean |δ|, as TRL's `sampling/sampling_logp_difference/mean`.

Corrections (`algorithm.rollout_correction`), a detached weight w per token multiplying the
per-token policy-gradient loss, ratio ρ = exp(δ) per token ("token") or exp(Σ_t δ_t) per sequence
("sequence", the same weight on every token of the row), cap C > 1:

- `tis`, truncated importance sampling: w = min(ρ, C).
- `mis`, masked importance sampling: w = ρ where ρ ≤ C, else 0 (the token or sequence is dropped).

These are TRL's `vllm_importance_sampling_mode` token_truncate / token_mask / sequence_truncate /
sequence_mask with `vllm_importance_sampling_cap` (https://github.com/huggingface/trl,
trl/trainer/grpo_trainer.py and grpo_config.py), and verl's `rollout_is_mode` truncate / mask with
`rollout_is_threshold` and `rollout_is_level` token / sequence (verl/trainer/ppo/mismatch_helper.py,
`compute_rollout_importance_weights`). As TRL, a masked token keeps its place in the loss's
denominator; verl's mask mode also removes it from there and masks ratios below 1/C.
"""

from __future__ import annotations

import math

import torch

CORRECTIONS = ("none", "tis", "mis")
LEVELS = ("token", "sequence")
_LOG_RATIO_LIMIT = 20.0  # exp() of a diverged token's δ: far past any cap, short of float32 overflow


def check_config(cfg) -> None:
    """Fail at start, naming the key, rather than at the first update."""
    if cfg.rollout_correction not in CORRECTIONS:
        raise ValueError(f"algorithm.rollout_correction must be one of {', '.join(CORRECTIONS)}, "
                         f"got '{cfg.rollout_correction}'")
    if cfg.rollout_correction_level not in LEVELS:
        raise ValueError(f"algorithm.rollout_correction_level must be one of {', '.join(LEVELS)}, "
                         f"got '{cfg.rollout_correction_level}'")
    if not cfg.rollout_correction_cap > 1:
        raise ValueError(f"algorithm.rollout_correction_cap must be > 1 (a cap of 1 or less would cut every "
                         f"token the learner likes more than the engine), got {cfg.rollout_correction_cap}")


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    return float((x * mask).sum() / mask.sum().clamp(min=1))


def importance_weights(log_ratio: torch.Tensor, mask: torch.Tensor, correction: str, level: str,
                       cap: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights, capped) [N, L] from δ = log π_old − log π_sampler: the weight of every masked token
    (0 elsewhere) and whether its ratio exceeded the cap (for a sequence: the sequence's ratio)."""
    mask = mask != 0
    log_ratio = torch.where(mask, log_ratio, torch.zeros_like(log_ratio))
    if level == "sequence":
        log_ratio = log_ratio.sum(dim=-1, keepdim=True).expand_as(mask)
    log_cap = math.log(cap)
    capped = (log_ratio > log_cap) & mask
    ratio = torch.exp(log_ratio.clamp(max=log_cap))  # min(ρ, C), computed in log space: no overflow
    if correction == "mis":
        ratio = torch.where(capped, torch.zeros_like(ratio), ratio)
    return torch.where(mask, ratio, torch.zeros_like(ratio)), capped


@torch.no_grad()
def mismatch_stats_and_weights(cfg, old_logprobs: torch.Tensor, sampling_logprobs: torch.Tensor,
                               mask: torch.Tensor) -> tuple[torch.Tensor | None, dict[str, float]]:
    """(weights or None without a correction, mismatch metrics) of aligned [N, L] log-probs."""
    delta = (old_logprobs - sampling_logprobs) * mask
    k3 = torch.expm1(delta.clamp(max=_LOG_RATIO_LIMIT)) - delta
    stats = {"mismatch/kl": _masked_mean(k3, mask), "mismatch/abs_logp_diff_mean": _masked_mean(delta.abs(), mask)}
    if cfg.rollout_correction == "none":
        return None, stats
    weights, capped = importance_weights(delta, mask, cfg.rollout_correction, cfg.rollout_correction_level,
                                         cfg.rollout_correction_cap)
    stats["mismatch/is_weight_mean"] = _masked_mean(weights, mask)
    stats["mismatch/capped_frac"] = _masked_mean(capped.float(), mask)
    return weights, stats


def mismatch_and_weights(cfg, tensors: dict[str, torch.Tensor], old_logprobs: torch.Tensor) -> dict[str, float]:
    """Mismatch metrics of a batch whose π_old is known before the update; with a correction on, also
    its weights as the `rollout_is_weights` column (aligned with `input_ids`, as `sampling_logprobs`
    and `old_logprobs` are)."""
    weights, stats = mismatch_stats_and_weights(cfg, old_logprobs, tensors["sampling_logprobs"], tensors["loss_mask"])
    if weights is not None:
        tensors["rollout_is_weights"] = weights
    return stats


def require_sampling_logprobs(cfg, tensors: dict[str, torch.Tensor]) -> bool:
    """Whether the batch carries the engine's log-probs; a correction without them is an error."""
    if "sampling_logprobs" in tensors:
        return True
    if cfg.rollout_correction != "none":
        raise ValueError(f"algorithm.rollout_correction={cfg.rollout_correction} needs the rollout engine's "
                         "sampling log-probs, one per completion token, and this batch has none (its engine did "
                         "not report them, or not for every token): use an engine that does (hf, vllm) or "
                         "algorithm.rollout_correction=none")
    return False
