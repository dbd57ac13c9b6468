"""Choosing the position t inside a document whose next token a thought should help predict.

RLP leaves this open; each strategy is registered by name (method.position_sampling).
Valid positions leave at least `min_context` tokens before t and `horizon` target tokens from t.
"""

from __future__ import annotations

import random

import torch

from rlpretrain.registry import Registry

POSITION_SAMPLERS: Registry = Registry("position sampler")


def valid_range(length: int, min_context: int, horizon: int) -> range:
    return range(min_context, length - horizon + 1)


@POSITION_SAMPLERS.register("random")
def random_positions(docs, epochs, rng: random.Random, cfg, ema_scorer) -> list[int]:
    return [rng.choice(valid_range(len(d), cfg.min_context, cfg.horizon)) for d in docs]


@POSITION_SAMPLERS.register("stride")
def stride_positions(docs, epochs, rng, cfg, ema_scorer) -> list[int]:
    """Every `stride` tokens; the k-th visit of a document takes its k-th stride position (cycling)."""
    out = []
    for doc, epoch in zip(docs, epochs):
        valid = valid_range(len(doc), cfg.min_context, cfg.horizon)
        slots = valid[:: cfg.stride]
        out.append(slots[epoch % len(slots)])
    return out


@POSITION_SAMPLERS.register("low_ema_prob")
def low_ema_prob_positions(docs, epochs, rng, cfg, ema_scorer) -> list[int]:
    """Where the EMA teacher finds the next token least likely: where a thought has most to add."""
    out = []
    for doc, logp in zip(docs, ema_scorer.all_logprobs(docs)):
        valid = valid_range(len(doc), cfg.min_context, cfg.horizon)
        # logp[j] scores token j+1, so token t's log-prob is logp[t-1]
        scores = logp[valid.start - 1: valid.stop - 1]
        k = min(cfg.low_ema_candidates, len(scores))
        candidates = torch.topk(-scores, k).indices.tolist()
        out.append(valid.start + rng.choice(sorted(candidates)))
    return out
