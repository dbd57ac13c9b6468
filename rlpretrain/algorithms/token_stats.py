"""Per-token log-probs (and entropies) from the final hidden states, for a module whose learner
asked for chunked log-probs or padding-free rows (models/forward_options.py).

The model runs with `logits_to_keep=1` (its own LM head touches one position) and hands back its
final hidden states; only the positions that are targets go through the LM head, in chunks
(algorithms/chunked_logprobs.py). Rows run padded, packed into one row (padding_free), or with
shared prompts run once (models/prefix_sharing.py) as in the plain path; packing takes precedence,
and compiled layers run without prefix sharing (it needs a KV cache).
"""

from __future__ import annotations

import torch

from rlpretrain.algorithms.chunked_logprobs import chunked_token_stats
from rlpretrain.models.forward_options import forward_options, unwrap
from rlpretrain.models.packing import pack_rows
from rlpretrain.models.prefix_sharing import can_share, shared_prefix_forward, suffix_view


def _final_hidden(module, **inputs) -> torch.Tensor:
    # every layer's output is kept until the forward ends: L x T x H, far below the T x V fp32
    # logits it replaces, and with gradients kept for the backward anyway
    out = module(**inputs, output_hidden_states=True, logits_to_keep=1)
    return out.hidden_states[-1]  # transformers ties it to the final (normed) last_hidden_state


def hidden_token_stats(module, micro, temperature: float, with_entropy: bool = False):
    """(log-probs [N, W-1], entropies [N, W-1] or None, the rows they align with), 0 at positions that
    are not targets: the trained tokens (`loss_mask`) or, without one, every real token after the first."""
    options = forward_options(module)
    view = micro
    if options.padding_free:
        ids, positions, index = pack_rows(micro["input_ids"], micro["attention_mask"])
        # no cache: transformers looks for packed rows only without one
        hidden = _final_hidden(module, input_ids=ids, position_ids=positions, use_cache=False)[0]
    elif (not options.compiled and "prompt_len" in micro and can_share(module)
          and (shared := suffix_view(micro)) is not None):
        view, prefixes, owner = shared
        hidden = shared_prefix_forward(module, prefixes, owner, view["input_ids"], view["attention_mask"], pad_id=0,
                                       hidden=True)
    else:
        hidden = _final_hidden(module, input_ids=micro["input_ids"], attention_mask=micro["attention_mask"],
                               use_cache=False)
    real = view["attention_mask"] != 0
    targets = view["loss_mask"][:, 1:] != 0 if "loss_mask" in view else real[:, 1:]
    rows, cols = (targets & real[:, :-1] & real[:, 1:]).nonzero(as_tuple=True)
    picked = hidden[index[rows, cols]] if options.padding_free else hidden[rows, cols]
    labels = view["input_ids"][rows, cols + 1]
    head = unwrap(module).get_output_embeddings()
    logp, entropy = chunked_token_stats(picked, head, labels, temperature, options.logprob_chunk_tokens, with_entropy)
    shape = (targets.shape[0], targets.shape[1])

    def scatter(values):
        return torch.zeros(shape, dtype=torch.float32, device=values.device).index_put((rows, cols), values)

    return scatter(logp), (scatter(entropy) if with_entropy else None), view
