"""Rollout engine on a transformers model: batched KV-cache sampling, no `generate()` overhead.

Colocated with the learner it samples from the learner's own module, so a weight sync is free.
"""

from __future__ import annotations

import torch

from rlpretrain.rollout.base import ROLLOUT_ENGINES, Completion, RolloutEngine, SamplingParams
from rlpretrain.rollout.sampling import sample_next


# Finished rows leave the batch once they are this fraction of it: each drop copies the whole KV
# cache, each finished row kept costs its share of every step. 1/4 was fastest on the quickstart.
DROP_FINISHED_AT = 0.25


@ROLLOUT_ENGINES.register("hf")
class HFEngine(RolloutEngine):
    def __init__(self, cfg, module: torch.nn.Module, tokenizer):
        self.cfg = cfg
        self.module = module
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    @torch.no_grad()
    def load_weights(self, buckets) -> None:
        """For an engine with a module of its own (a separate worker); colocated, it shares the learner's."""
        from rlpretrain.rollout.sync import WeightSyncError

        state = self.module.state_dict()  # views of the parameters: copying into them updates the model
        for bucket in buckets:
            for name, tensor in bucket:
                if name not in state or state[name].shape != tensor.shape:
                    raise WeightSyncError(f"cannot load parameter '{name}' {tuple(tensor.shape)}: the engine's model "
                                          f"has {tuple(state[name].shape) if name in state else 'no such parameter'}")
                state[name].copy_(tensor)

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[list[Completion]]:
        if any(len(p) == 0 for p in prompts):
            raise ValueError("every prompt needs at least one token")
        generator = torch.Generator(device=self._device()).manual_seed(params.seed)
        out: list[Completion] = []
        step = max(1, self.cfg.max_batch_size // params.n)  # prompts per call; each yields n rows
        for start in range(0, len(prompts), step):
            out.extend(self._generate_batch(prompts[start:start + step], params, generator))
        return [out[i * params.n:(i + 1) * params.n] for i in range(len(prompts))]

    def _device(self) -> torch.device:
        return next(self.module.parameters()).device

    @torch.no_grad()
    def _generate_batch(self, prompts, params: SamplingParams, generator) -> list[Completion]:
        device = self._device()
        was_training = self.module.training
        self.module.eval()
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for i, p in enumerate(prompts):  # left padding: every row's next token is at the same column
            ids[i, width - len(p):] = torch.tensor(p, device=device)
            mask[i, width - len(p):] = 1
        n = len(prompts) * params.n  # rows: prompt 0 x n, prompt 1 x n, ...
        stop_ids = torch.tensor(params.stop_token_ids or [-1], device=device)
        tokens = torch.full((n, params.max_new_tokens), self.pad_id, dtype=torch.long, device=device)
        logps = torch.zeros((n, params.max_new_tokens), device=device)
        lengths = torch.zeros(n, dtype=torch.long, device=device)
        stopped = torch.zeros(n, dtype=torch.bool, device=device)
        active = torch.arange(n, device=device)  # the batch's rows; finished rows leave it in bulk
        done = torch.zeros(n, dtype=torch.bool, device=device)  # finished rows still in the batch
        step_ids, positions, cache = ids, (mask.cumsum(-1) - 1).clamp(min=0), None
        for t in range(params.max_new_tokens):
            out = self.module(input_ids=step_ids, attention_mask=mask, position_ids=positions,
                              past_key_values=cache, use_cache=True, logits_to_keep=1)
            cache = out.past_key_values
            if t == 0 and params.n > 1:  # the n samples of a prompt share its prefill: run it once, then copy
                cache.batch_repeat_interleave(params.n)
                out.logits = out.logits.repeat_interleave(params.n, dim=0)
                mask, positions = mask.repeat_interleave(params.n, dim=0), positions.repeat_interleave(params.n, dim=0)
            token, logp = sample_next(out.logits[:, -1], params.temperature, params.top_p, generator)
            live = active[~done]
            tokens[live, t], logps[live, t] = token[~done], logp[~done]
            lengths[live] += 1
            hit = torch.isin(token, stop_ids) & ~done
            if params.stop_strings:
                hit[~done] |= self._hits_stop_string(tokens[live], lengths[live], params.stop_strings)
            stopped[active[hit]] = True
            done |= hit
            if bool(done.all()):
                break
            if float(done.float().mean()) >= DROP_FINISHED_AT:  # drop finished rows, KV cache included
                keep = (~done).nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                active, token, mask, positions, done = active[keep], token[keep], mask[keep], positions[keep], done[keep]
            step_ids = token[:, None]
            positions = positions[:, -1:] + 1
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        if was_training:
            self.module.train()
        return [
            Completion(token_ids=tokens[i, :lengths[i]].tolist(), logprobs=logps[i, :lengths[i]].tolist(),
                       finish_reason="stop" if bool(stopped[i]) else "length")
            for i in range(n)
        ]

    def _hits_stop_string(self, tokens, lengths, stop_strings) -> torch.Tensor:
        longest = max(len(s) for s in stop_strings)
        hits = []
        for row, n in zip(tokens.tolist(), lengths.tolist()):
            # a stop string of k characters spans at most k tokens: decode only the tail
            tail = self.tokenizer.decode(row[max(0, n - longest - 1):n])
            hits.append(any(s in tail for s in stop_strings))
        return torch.tensor(hits, device=tokens.device)
