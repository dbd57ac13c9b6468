"""RLP's information-gain reward (arXiv 2510.01265, §method).

r(c) = S_pred(c) − S_ema, where S_pred(c) = log p_θ(x_t | x_<t, <think> c </think>) is scored by the
policy and S_ema = log p_φ(x_t | x_<t) by the EMA teacher, both teacher-forced. With a horizon H > 1
(not in the paper; off by default) each term is a discounted sum over x_t..x_{t+H-1}.
"""

from __future__ import annotations

import torch

from .registry import register_reward


def information_gain_terms(policy_scorer, ema_scorer, scored_ids: list[list[int]], baseline_ids: list[list[int]],
                           horizon: int = 1, discount: float = 1.0, prompt_lens: list[int] | None = None,
                           pred_tail: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(S_pred, S_ema) per sample; both sequences end with the same `horizon` target tokens.

    `prompt_lens`: the context+`<think>` length of each scored sequence, so the G thoughts of one
    context are scored with that context run once. `pred_tail` [N, horizon]: the policy's log-probs
    of the targets, already scored (by the rollout engine, SamplingParams.suffix_ids); then the
    policy scorer is not run.
    """
    weights = discount ** torch.arange(horizon, dtype=torch.float32)
    if pred_tail is None:
        pred_tail = policy_scorer.tail_logprobs(scored_ids, horizon, prompt_lens)
    s_pred = pred_tail @ weights
    # the no-think sequence is the same for all G thoughts of a context: score each once
    unique = {tuple(seq): k for k, seq in enumerate(dict.fromkeys(map(tuple, baseline_ids)))}
    unique_scores = ema_scorer.tail_logprobs([list(seq) for seq in unique], horizon) @ weights
    s_ema = unique_scores[torch.tensor([unique[tuple(seq)] for seq in baseline_ids])]
    return s_pred, s_ema


@register_reward("info_gain")
def info_gain(prompts, completions, *, s_pred, s_ema, **_):
    return [float(p) - float(e) for p, e in zip(s_pred, s_ema)]
