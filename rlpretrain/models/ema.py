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

    def init_from(self, config, named_weights) -> None:
        """A plain model of `config` holding the policy's weights (a learner's `named_weights()`:
        whole, LoRA merged). Built from the config, so no hook of a learner's sharding comes along."""
        from transformers import AutoModelForCausalLM

        weights = {name: t.detach() for name, t in named_weights}
        first = next(iter(weights.values()))
        self.module = AutoModelForCausalLM.from_config(config, dtype=first.dtype).to(first.device)
        missing, unexpected = self.module.load_state_dict(weights, strict=False)
        if unexpected or [k for k in missing if k not in self._tied()]:
            raise ValueError(f"EMA teacher: the policy's weights do not fit its config (missing {missing}, "
                             f"unexpected {unexpected})")
        self.module.eval().requires_grad_(False)

    def _tied(self) -> set[str]:
        keys = getattr(self.module, "_tied_weights_keys", None) or {}
        return set(keys if isinstance(keys, (list, set, tuple)) else keys.keys())

    @torch.no_grad()
    def update(self, named_weights) -> None:
        if self.module is None:
            raise RuntimeError("EMA teacher updated before it was initialised")
        own = self.module.state_dict()  # views of its parameters; tied ones share storage: update each once
        targets, sources, seen = [], [], set()
        for name, tensor in named_weights:
            if name in own and own[name].data_ptr() not in seen:
                seen.add(own[name].data_ptr())
                targets.append(own[name])
                sources.append(tensor.detach())
        torch._foreach_lerp_(targets, sources, 1.0 - self.decay)
