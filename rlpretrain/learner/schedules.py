"""Learning-rate schedules, by name."""

from __future__ import annotations

import math

from rlpretrain.registry import Registry

LR_SCHEDULES: Registry = Registry("lr schedule")


@LR_SCHEDULES.register("constant")
def constant(step: int, total: int, warmup: int, min_ratio: float) -> float:
    return min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0


@LR_SCHEDULES.register("cosine")
def cosine(step: int, total: int, warmup: int, min_ratio: float) -> float:
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
