"""How the learner wants its module run for log-probs: chunked through the LM head, packed rows.

The learner sets these on its module (learner/efficiency.py); every log-prob path reads them from
the module it is given (algorithms/token_stats.py), so the policy loss, the reference and old
log-probs (a copy of the module carries them) and the next-token loss all run the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ATTRIBUTE = "rlpretrain_forward_options"


@dataclass(frozen=True)
class ForwardOptions:
    logprob_chunk_tokens: int = 0  # 0: the LM head over all of a micro-batch's targets at once
    padding_free: bool = False
    compiled: bool = False  # compiled layers: run without a KV cache, whose per-layer state would recompile them

    @property
    def plain(self) -> bool:
        """True when nothing asks for the hidden-state path: the module's own logits are used."""
        return self.logprob_chunk_tokens <= 0 and not self.padding_free and not self.compiled


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return getattr(module, "module", module)  # a DeepSpeed engine: the model it wraps


def set_forward_options(module: torch.nn.Module, options: ForwardOptions) -> None:
    setattr(unwrap(module), ATTRIBUTE, options)


def forward_options(module: torch.nn.Module) -> ForwardOptions:
    return getattr(unwrap(module), ATTRIBUTE, None) or ForwardOptions()
