"""An exponential-moving-average copy of a model (RLP's no-think baseline p_φ)."""

from __future__ import annotations

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
        """A plain copy of the policy (whole parameters: call it where a sharded learner has gathered
        them). Built from the config, not deep-copied, so no hook of a learner's sharding comes along."""
        from transformers import AutoModelForCausalLM

        dtype = next(policy.parameters()).dtype
        self.module = AutoModelForCausalLM.from_config(policy.config, dtype=dtype).to(next(policy.parameters()).device)
        self.module.load_state_dict({k: v.detach() for k, v in policy.state_dict().items()})
        self.module.eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, policy: torch.nn.Module) -> None:
        if self.module is None:
            raise RuntimeError("EMA teacher updated before it was initialised")
        ema_params = list(self.module.parameters())
        policy_params = [p.detach() for p in policy.parameters()]
        torch._foreach_lerp_(ema_params, policy_params, 1.0 - self.decay)
