"""Teacher-forced log-probs in batches: the engine behind model-based rewards.

Used for RLP's information gain (policy with a thought vs EMA teacher without), for choosing
low-probability positions, and later for RPT's dense reward and proxy entropy.
"""

from __future__ import annotations

import torch

from rlpretrain.learner.microbatch import length_buckets


class TeacherForcedScorer:
    def __init__(self, module: torch.nn.Module, pad_id: int, max_tokens_per_batch: int = 16384):
        self.module = module
        self.pad_id = pad_id
        self.max_tokens = max_tokens_per_batch

    @torch.no_grad()
    def tail_logprobs(self, sequences: list[list[int]], n_tail: int) -> torch.Tensor:
        """log p(seq[j] | seq[:j]) for the last `n_tail` tokens of each sequence -> [N, n_tail] (CPU, fp32)."""
        if any(len(s) <= n_tail for s in sequences):
            raise ValueError(f"every sequence needs more than n_tail={n_tail} tokens")
        results = [None] * len(sequences)
        for batch in self._batches(sequences):
            rows = [sequences[i] for i in batch]
            ids, mask = self._left_pad(rows)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = self.module(input_ids=ids, attention_mask=mask, position_ids=positions,
                                 logits_to_keep=n_tail + 1).logits[:, :-1].float()
            targets = ids[:, -n_tail:]
            logp = torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None]).squeeze(-1)
            for k, i in enumerate(batch):
                results[i] = logp[k].cpu()
        return torch.stack(results) if results else torch.empty(0, n_tail)

    @torch.no_grad()
    def all_logprobs(self, sequences: list[list[int]]) -> list[torch.Tensor]:
        """For each sequence, log p(seq[j] | seq[:j]) for j = 1..len-1 (CPU, fp32)."""
        results = [None] * len(sequences)
        for batch in self._batches(sequences):
            rows = [sequences[i] for i in batch]
            ids, mask = self._left_pad(rows)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = self.module(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, :-1].float()
            logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
            for k, i in enumerate(batch):
                results[i] = logp[k, ids.shape[1] - len(sequences[i]):].cpu()
        return results

    def _batches(self, sequences):
        return length_buckets([len(seq) for seq in sequences], self.max_tokens)

    def _left_pad(self, rows):
        device = next(self.module.parameters()).device
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for k, r in enumerate(rows):
            ids[k, width - len(r):] = torch.tensor(r, device=device)
            mask[k, width - len(r):] = 1
        return ids, mask
