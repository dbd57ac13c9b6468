"""An exponential-moving-average copy of a model (RLP's no-think baseline p_φ)."""

from __future__ import annotations

import copy

import torch


class EMATeacher:
    """φ ← θ lazily on first use, then φ ← τ·φ + (1−τ)·θ after every optimizer step (RLP, τ = 0.999)."""

    def __init__(self, decay: float):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"ema decay must be in [0, 1], got {decay}")
        self.decay = decay
        self.module: torch.nn.Module | None = None

    @property
    def initialised(self) -> bool:
        return self.module is not None

    def init_from(self, policy: torch.nn.Module) -> None:
        self.module = copy.deepcopy(policy).eval()
        self.module.requires_grad_(False)

    @torch.no_grad()
    def update(self, policy: torch.nn.Module) -> None:
        if self.module is None:
            raise RuntimeError("EMA teacher updated before it was initialised")
        ema_params = list(self.module.parameters())
        policy_params = [p.detach() for p in policy.parameters()]
        torch._foreach_lerp_(ema_params, policy_params, 1.0 - self.decay)
