"""Rollout engine on a transformers model: batched KV-cache sampling, no `generate()` overhead.

Colocated with the learner it samples from the learner's own module, so a weight sync is free.
It also scores teacher-forced suffixes (SamplingParams.suffix_ids) in the same decode loop: a row
whose completion has ended is fed its suffix while the other rows still sample, so RLP's S_pred
costs a few extra decode steps instead of a second pass over every context.
"""

from __future__ import annotations

import torch

from rlpretrain.models.device import module_device
from rlpretrain.rollout.base import ROLLOUT_ENGINES, Completion, RolloutEngine, SamplingParams
from rlpretrain.rollout.kv_cache import preallocated_cache
from rlpretrain.rollout.sampling import sample_next


# Prompts whose samples have all finished leave the batch once they are this fraction of it: each
# drop copies the whole KV cache, each finished prompt kept costs its share of every step.
DROP_FINISHED_AT = 0.25

SAMPLING, FORCING, DONE = 0, 1, 2  # a row's phase: drawing its completion, fed its suffix, finished


@ROLLOUT_ENGINES.register("hf")
class HFEngine(RolloutEngine):
    scores_suffixes = True

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
        self.check_params(params, len(prompts))
        generator = torch.Generator(device=self._device()).manual_seed(params.seed)
        out: list[Completion] = []
        step = max(1, self.cfg.max_batch_size // params.n)  # prompts per call; each yields n rows
        for start in range(0, len(prompts), step):
            suffixes = params.suffix_ids[start:start + step] if params.suffix_ids is not None else None
            out.extend(self._generate_batch(prompts[start:start + step], params, generator, suffixes))
        return [out[i * params.n:(i + 1) * params.n] for i in range(len(prompts))]

    def _device(self) -> torch.device:
        return module_device(self.module)  # prompts, cache and samples live there; completions return as lists

    @torch.inference_mode()  # not no_grad: skipping version counters and views' autograd metadata is ~10% here
    def _generate_batch(self, prompts, params: SamplingParams, generator, suffixes) -> list[Completion]:
        """One KV-cache row per prompt: the prompt runs once, then each step appends its n samples' tokens
        to that row, each sample seeing the prompt and its own tokens only (a 4D mask). The n samples
        thus share one copy of the prompt's keys and values instead of n."""
        device = self._device()
        was_training = self.module.training
        self.module.eval()
        g = params.n
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for i, p in enumerate(prompts):  # left padding: every row's next token is at the same column
            ids[i, width - len(p):] = torch.tensor(p, device=device)
            mask[i, width - len(p):] = 1
        n = len(prompts) * g  # samples: prompt 0 x n, prompt 1 x n, ...
        stop_ids = torch.tensor(params.stop_token_ids or [-1], device=device)
        tokens = torch.full((n, params.max_new_tokens), self.pad_id, dtype=torch.long, device=device)
        logps = torch.zeros((n, params.max_new_tokens), device=device)
        lengths = torch.zeros(n, dtype=torch.long, device=device)
        stopped = torch.zeros(n, dtype=torch.bool, device=device)
        forced = _ForcedSuffixes(suffixes, params, n, device)
        groups = torch.arange(len(prompts), device=device)  # the prompts still in the batch
        sample = torch.arange(g, device=device)
        phase = torch.full((n,), SAMPLING, dtype=torch.long, device=device)  # of the batch's samples
        prompt_lens = mask.sum(-1)
        # additive mask over the cache: the prompt's own columns, then one column per sample and step
        dtype = next(self.module.parameters()).dtype
        blocked = torch.finfo(dtype).min
        attend = torch.zeros((len(prompts), 1, g, width), dtype=dtype, device=device)
        attend.masked_fill_(mask[:, None, None, :] == 0, blocked)
        own = torch.full((g, g), blocked, dtype=dtype, device=device).fill_diagonal_(0)
        steps = params.max_new_tokens + forced.max_steps
        # The mask still grows by concatenation: a view into a preallocated one slowed attention down.
        cache = preallocated_cache(self.module, width + g * (steps - 1))  # the prompt, then g per decode step
        out = self.module(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                          past_key_values=cache, use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1].repeat_interleave(g, dim=0)
        for t in range(steps):
            if t > 0:
                attend = torch.cat([attend, own.expand(len(groups), 1, g, g)], dim=-1)
                positions = (prompt_lens[groups] + t - 1)[:, None].expand(-1, g)
                out = self.module(input_ids=next_ids.view(len(groups), g), attention_mask=attend,
                                  position_ids=positions, past_key_values=cache, use_cache=True, logits_to_keep=g)
                logits = out.logits.reshape(len(groups) * g, -1)
            active = (groups[:, None] * g + sample).view(-1)  # the batch's samples
            token, logp = sample_next(logits, params.temperature, params.top_p, generator)
            next_ids = token
            if forced.enabled:  # samples past their completion: score the forced token, then feed it
                next_ids = forced.step(logits, active, phase, token)
            sampling = phase == SAMPLING
            if bool(sampling.any()):
                rows = active[sampling]
                tokens[rows, t], logps[rows, t] = token[sampling], logp[sampling]
                lengths[rows] += 1
                hit = torch.isin(token, stop_ids) & sampling
                if params.stop_strings:
                    hit[sampling] |= self._hits_stop_string(tokens[rows], lengths[rows], params.stop_strings)
                stopped[active[hit]] = True
                ended = hit | (sampling & (lengths[active] == params.max_new_tokens))
                phase[ended] = forced.begin(active[ended], token[ended]) if forced.enabled else DONE
            finished = (phase == DONE).view(-1, g).all(dim=1)  # prompts whose samples are all done
            if bool(finished.all()):
                break
            if float(finished.float().mean()) >= DROP_FINISHED_AT:  # drop them, KV cache included
                keep = (~finished).nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                kept = (keep[:, None] * g + sample).view(-1)
                groups, attend, next_ids, phase = groups[keep], attend[keep], next_ids[kept], phase[kept]
        if was_training:
            self.module.train()
        return [
            Completion(token_ids=tokens[i, :lengths[i]].tolist(), logprobs=logps[i, :lengths[i]].tolist(),
                       finish_reason="stop" if bool(stopped[i]) else "length", suffix_logprobs=forced.logprobs(i))
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


class _ForcedSuffixes:
    """Per row the tokens fed after its completion: [close] + the prompt's suffix. A completion that
    ends with `close` starts past it (its last sampled token is the close); one cut short starts at
    it. The log-prob of every suffix token is read off the step that predicts it."""

    def __init__(self, suffixes, params: SamplingParams, n: int, device):
        self.enabled = suffixes is not None
        self.max_steps = 0
        if not self.enabled:
            return
        self.close = params.suffix_close_id
        rows = [[self.close, *s] for s in suffixes for _ in range(params.n)]
        self.length = torch.tensor([len(r) for r in rows], device=device)
        self.max_steps = int(self.length.max())
        self.tokens = torch.tensor([r + [0] * (self.max_steps - len(r)) for r in rows], device=device)
        self.pos = torch.zeros(n, dtype=torch.long, device=device)  # next forced token, per row
        self.scores = torch.zeros((n, self.max_steps - 1), device=device)

    def begin(self, rows: torch.Tensor, last_token: torch.Tensor) -> torch.Tensor:
        """Rows whose completion just ended: their phase from now (DONE when nothing is left to score)."""
        self.pos[rows] = (last_token == self.close).long()
        return torch.where(self.pos[rows] < self.length[rows], FORCING, DONE)

    def step(self, logits: torch.Tensor, active: torch.Tensor, phase: torch.Tensor, sampled: torch.Tensor) -> torch.Tensor:
        """Score this step's forced tokens; returns the batch's next input ids."""
        forcing = phase == FORCING
        if not bool(forcing.any()):
            return sampled
        rows = active[forcing]
        pos = self.pos[rows]
        want = self.tokens[rows, pos]
        logp = torch.log_softmax(logits[forcing].float(), dim=-1).gather(-1, want[:, None]).squeeze(-1)
        scored = pos >= 1  # position 0 is the close: fed, not scored
        self.scores[rows[scored], pos[scored] - 1] = logp[scored]
        self.pos[rows] = pos + 1
        phase[forcing] = torch.where(pos + 1 < self.length[rows], FORCING, DONE)
        next_ids = sampled.clone()
        next_ids[forcing] = want
        return next_ids

    def logprobs(self, row: int) -> list[float] | None:
        return self.scores[row, :int(self.length[row]) - 1].tolist() if self.enabled else None
