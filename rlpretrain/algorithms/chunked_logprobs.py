"""Per-token log-probs and entropies from hidden states through the LM head, a chunk of tokens at a time.

The logits are the largest tensor of a training step: [tokens x vocab] in fp32, 1.2 GiB for 2,048
tokens of Qwen's 151,936-token vocabulary, kept (with the softmax's own copies) for the backward.
Here each chunk's logits exist only inside a checkpointed call: the forward keeps the chunk's
log-probs, and the backward recomputes its logits, one chunk at a time. The arithmetic per token is
losses.token_logprobs / entropy_from_logits, so the numbers are the full computation's.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

from rlpretrain.algorithms.losses import entropy_from_logits, token_logprobs


def _head_stats(head, hidden, labels, temperature: float, with_entropy: bool):
    logits = head(hidden).float()
    logp = token_logprobs(logits, labels, temperature)
    return (logp, entropy_from_logits(logits, temperature)) if with_entropy else (logp,)


def chunked_token_stats(hidden: torch.Tensor, head: torch.nn.Module, labels: torch.Tensor, temperature: float,
                        chunk_tokens: int, with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(log softmax(head(h) / T)[label] per token [T], entropy [T] or None) for hidden states [T, H].

    chunk_tokens <= 0: one chunk of everything. Without gradients (reference and old log-probs) the
    chunks are not checkpointed: nothing is kept for a backward, so a chunk's logits die with it.
    """
    if len(hidden) == 0:
        empty = hidden.new_zeros(0, dtype=torch.float32)
        return empty, (empty if with_entropy else None)
    size = chunk_tokens if chunk_tokens > 0 else len(hidden)
    recompute = torch.is_grad_enabled() and chunk_tokens > 0
    parts = []
    for start in range(0, len(hidden), size):
        args = (head, hidden[start:start + size], labels[start:start + size], temperature, with_entropy)
        parts.append(checkpoint(_head_stats, *args, use_reentrant=False) if recompute else _head_stats(*args))
    logp = torch.cat([p[0] for p in parts])
    return logp, (torch.cat([p[1] for p in parts]) if with_entropy else None)
