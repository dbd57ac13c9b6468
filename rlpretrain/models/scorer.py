"""Teacher-forced log-probs in batches: the engine behind model-based rewards.

Used for RLP's information gain (policy with a thought vs EMA teacher without), for choosing
low-probability positions, and later for RPT's dense reward and proxy entropy.
"""

from __future__ import annotations

import torch

from rlpretrain.learner.microbatch import length_buckets, prefix_buckets
from rlpretrain.models.device import module_device
from rlpretrain.models.prefix_sharing import can_share, distinct_prefixes, shared_prefix_forward


class TeacherForcedScorer:
    def __init__(self, module: torch.nn.Module, pad_id: int, max_tokens_per_batch: int = 16384):
        self.module = module
        self.pad_id = pad_id
        self.max_tokens = max_tokens_per_batch

    @torch.no_grad()
    def tail_logprobs(self, sequences: list[list[int]], n_tail: int, prefix_lens: list[int] | None = None) -> torch.Tensor:
        """log p(seq[j] | seq[:j]) for the last `n_tail` tokens of each sequence -> [N, n_tail] (CPU, fp32).

        `prefix_lens[i]`: sequence i starts with a prompt of that many tokens that other sequences may
        share (RLP's context and `<think>`); each distinct prompt then runs once (models/prefix_sharing.py).
        """
        if any(len(s) <= n_tail for s in sequences):
            raise ValueError(f"every sequence needs more than n_tail={n_tail} tokens")
        results = [None] * len(sequences)
        batches = (self._forward(sequences, keep=n_tail + 1) if prefix_lens is None
                   else self._forward_shared(sequences, prefix_lens, keep=n_tail + 1))
        for batch, ids, logits in batches:
            logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, -n_tail:, None]).squeeze(-1)
            for k, i in enumerate(batch):
                results[i] = logp[k].cpu()
        return torch.stack(results) if results else torch.empty(0, n_tail)

    @torch.no_grad()
    def next_token_logits(self, sequences: list[list[int]]) -> torch.Tensor:
        """Logits for the token after each whole sequence -> [N, V] (CPU, fp32)."""
        results = [None] * len(sequences)
        for batch, _, logits in self._forward(sequences, keep=1):
            for k, i in enumerate(batch):
                results[i] = logits[k, -1].cpu()
        return torch.stack(results)

    @torch.no_grad()
    def map_positions(self, sequences: list[list[int]], fn) -> list[torch.Tensor]:
        """fn(logits [B, W-1, V], ids [B, W]) -> per-position values [B, W-1]; for each sequence the
        values at its own positions j = 1..len-1 (CPU)."""
        results = [None] * len(sequences)
        for batch, ids, logits in self._forward(sequences, keep=None):
            values = fn(logits[:, :-1], ids)
            for k, i in enumerate(batch):
                results[i] = values[k, ids.shape[1] - len(sequences[i]):].cpu()
        return results

    def all_logprobs(self, sequences: list[list[int]]) -> list[torch.Tensor]:
        """For each sequence, log p(seq[j] | seq[:j]) for j = 1..len-1 (CPU, fp32)."""
        return self.map_positions(
            sequences, lambda logits, ids: torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1))

    def _forward(self, sequences, keep: int | None):
        """Left-padded batches of similar length: (indices, ids, fp32 logits of the last `keep` positions)."""
        for batch in self._batches(sequences):
            ids, mask = self._left_pad([sequences[i] for i in batch])
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            extra = {"logits_to_keep": keep} if keep is not None else {}
            logits = self.module(input_ids=ids, attention_mask=mask, position_ids=positions, **extra).logits.float()
            yield batch, ids, logits

    def _forward_shared(self, sequences, prefix_lens: list[int], keep: int):
        """As `_forward`, with each distinct prefix run once; `ids` are the left-padded suffixes."""
        prefix_lens = [min(p, len(s) - keep) for p, s in zip(prefix_lens, sequences)]  # kept logits: suffix only
        prefixes, owner = distinct_prefixes([tuple(s[:p]) for s, p in zip(sequences, prefix_lens)])
        if min(prefix_lens) < 1 or len(prefixes) == len(owner) or not can_share(self.module):  # plain pass
            yield from self._forward(sequences, keep)
            return
        suffix_lens = [len(s) - p for s, p in zip(sequences, prefix_lens)]
        for batch in prefix_buckets(prefix_lens, suffix_lens, owner, self.max_tokens):
            batch_prefixes, batch_owner = distinct_prefixes([tuple(sequences[i][:prefix_lens[i]]) for i in batch])
            ids, mask = self._left_pad([sequences[i][prefix_lens[i]:] for i in batch])
            logits = shared_prefix_forward(self.module, batch_prefixes, batch_owner, ids, mask, self.pad_id, keep)
            yield batch, ids, logits

    def _batches(self, sequences):
        return length_buckets([len(seq) for seq in sequences], self.max_tokens)

    def _left_pad(self, rows):
        device = module_device(self.module)  # rows are built there; results come back to the CPU
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for k, r in enumerate(rows):
            ids[k, width - len(r):] = torch.tensor(r, device=device)
            mask[k, width - len(r):] = 1
        return ids, mask
