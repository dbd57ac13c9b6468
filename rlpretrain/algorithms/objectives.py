"""Losses in the learner's numerator/denominator form (see learner/base.py).

A batch row is one right-padded token sequence; `loss_mask[i, j] = 1` marks token j as a
trained target (predicted from tokens < j). Everything is shifted by one inside, once, here.
"""

from __future__ import annotations

import torch

from rlpretrain.algorithms.losses import (
    POLICY_LOSSES,
    agg_denominator,
    agg_numerator,
    entropy_from_logits,
    kl_penalty,
    token_logprobs,
)
from rlpretrain.algorithms.rollout_correction import mismatch_stats_and_weights
from rlpretrain.algorithms.token_stats import hidden_token_stats
from rlpretrain.models.forward_options import forward_options
from rlpretrain.models.prefix_sharing import can_share, shared_prefix_forward, suffix_view


def _forward_logits(module, micro) -> torch.Tensor:
    out = module(input_ids=micro["input_ids"], attention_mask=micro["attention_mask"])
    return out.logits[:, :-1].float()


def _forward(module, micro) -> tuple[torch.Tensor, dict]:
    """(logits [N, W-1, V], the rows they are aligned with). Rows that share a prompt (a `prompt_len`
    column, G samples per prompt) run the prompt once: the rows are then their completion windows."""
    shared = suffix_view(micro) if "prompt_len" in micro and can_share(module) else None
    if shared is None:
        return _forward_logits(module, micro), micro
    view, prefixes, owner = shared
    logits = shared_prefix_forward(module, prefixes, owner, view["input_ids"], view["attention_mask"], pad_id=0)
    return logits[:, :-1], view


def token_stats(module, micro, temperature: float = 1.0, with_entropy: bool = False):
    """(log-probs [N, W-1], entropies or None, the rows they align with): from the module's logits, or
    from its hidden states in chunks / packed rows when its learner asked (algorithms/token_stats.py)."""
    if not forward_options(module).plain:
        return hidden_token_stats(module, micro, temperature, with_entropy)
    logits, micro = _forward(module, micro)
    logp = token_logprobs(logits, micro["input_ids"][:, 1:], temperature)
    return logp, (entropy_from_logits(logits, temperature) if with_entropy else None), micro


def _shifted(micro, key):
    value = micro[key]
    return value[:, 1:] if value.dim() == 2 else value


class NextTokenObjective:
    """Cross-entropy on the masked targets; token mean over the whole batch by default."""

    def __init__(self, agg: str = "token_mean"):
        self.agg = agg

    def denominator(self, micro) -> float:
        return agg_denominator(_shifted(micro, "loss_mask"), self.agg)

    def numerator(self, module, micro):
        logp, _, micro = token_stats(module, micro)
        mask = _shifted(micro, "loss_mask")
        loss_mat = -logp  # the next-token loss (losses.next_token_loss)
        numerator = agg_numerator(loss_mat, mask, self.agg)
        # weighted by denominator shares in the learner, this adds up to the full-batch loss
        return numerator, {"ntp_loss": float(numerator.detach() / max(self.denominator(micro), 1e-12))}


class PolicyGradientObjective:
    """A registered policy loss on completion tokens, plus optional KL to a reference and entropy bonus.

    Expects `advantages` ([N] per sequence or [N, L] per token), and optionally `old_logprobs`
    (absent: exactly on-policy, the current log-probs detached) and `ref_logprobs` ([N, L]).
    """

    def __init__(self, cfg, temperature: float):
        self.cfg = cfg
        self.temperature = temperature
        self.policy_loss = POLICY_LOSSES.get(cfg.policy_loss)

    def denominator(self, micro) -> float:
        return agg_denominator(_shifted(micro, "loss_mask"), self.cfg.loss_agg)

    def numerator(self, module, micro):
        cfg = self.cfg
        logp, entropy, micro = token_stats(module, micro, self.temperature, with_entropy=cfg.entropy_coef > 0)
        mask = _shifted(micro, "loss_mask")
        old = _shifted(micro, "old_logprobs") if "old_logprobs" in micro else logp.detach()
        loss_mat, stats = self.policy_loss(logp, old, _shifted(micro, "advantages"), mask, cfg)
        stats = {f"pg/{k}": float(v) for k, v in stats.items()}
        # rollout-learner mismatch and its correction (rollout_correction.py): weights computed before the
        # update from a separate π_old, or, on-policy, from this forward's own log-probs (no extra pass)
        if "rollout_is_weights" in micro:
            loss_mat = loss_mat * _shifted(micro, "rollout_is_weights")
        elif "sampling_logprobs" in micro and "old_logprobs" not in micro:
            weights, mismatch = mismatch_stats_and_weights(cfg, old, _shifted(micro, "sampling_logprobs"), mask)
            loss_mat = loss_mat if weights is None else loss_mat * weights
            stats.update(mismatch)
        if cfg.kl_coef > 0:
            kl = kl_penalty(logp, _shifted(micro, "ref_logprobs"), cfg.kl_estimator)
            loss_mat = loss_mat + cfg.kl_coef * kl
            stats["kl"] = float((kl.detach() * mask).sum() / mask.sum().clamp(min=1))
        if cfg.entropy_coef > 0:
            loss_mat = loss_mat - cfg.entropy_coef * entropy
            stats["entropy"] = float((entropy.detach() * mask).sum() / mask.sum().clamp(min=1))
        numerator = agg_numerator(loss_mat, mask, cfg.loss_agg, cfg.loss_norm_const)
        stats["pg_loss"] = float(numerator.detach() / max(self.denominator(micro), 1e-12))
        return numerator, stats
