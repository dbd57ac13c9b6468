"""RPT: Reinforcement Pre-Training (Microsoft, arXiv 2506.08007).

Next-token reasoning: for a context x_<t (a document prefix at a hard position) the policy writes
``<think> … </think>`` then ``\\boxed{y}``; y may span several tokens and is rewarded by prefix
matching against the true continuation (rewards/prefix_match.py). GRPO with G samples per
context, KL 0, one update per batch (the algorithm config); dynamic sampling from a given step
(rlpretrain/rollout/dynamic_sampling.py). Positions come from the entropy pre-pass
(rlpretrain/data/entropy_filter.py). The rpt job (rlpretrain/jobs/rpt.py) adds the optional format warm-up and
the before/after next-token-accuracy evaluation (rlpretrain/eval/) around the rl job.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
import time
from pathlib import Path

from rlpretrain.rewards import build_rewards, combine_rewards
from rlpretrain.rewards.prefix_match import extract_boxed, token_bytes
from rlpretrain.data.documents import DataError, DocumentStream, load_documents, split_holdout
from rlpretrain.data.entropy_filter import hard_positions, position_entropies
from rlpretrain.methods.base import METHODS, Method, MethodContext
from rlpretrain.models.build_cache import cache_root
from rlpretrain.models.proxy import load_proxy, proxy_identity
from rlpretrain.models.scorer import TeacherForcedScorer
from rlpretrain.prompts.rpt import TEMPLATES, build_prompt
from rlpretrain.rollout.base import RolloutEngine, SamplingParams
from rlpretrain.rollout.batch import RolloutBatch
from rlpretrain.rollout.dynamic_sampling import dynamic_sample_batch
from rlpretrain.seeding import derive_seed

log = logging.getLogger(__name__)


@METHODS.register("rpt")
class RPT(Method):
    def __init__(self, cfg, ctx: MethodContext):
        super().__init__(cfg, ctx)
        self.cfg = m = cfg.method
        self.seed = cfg.seed
        self.tokenizer = tokenizer = ctx.tokenizer
        if m.group_size < 2:
            raise ValueError("method.group_size must be at least 2 (GRPO compares the responses of one context)")
        if m.template not in TEMPLATES:
            raise ValueError(f"unknown method.template '{m.template}'; available: {', '.join(TEMPLATES)}")
        texts, _ = split_holdout(load_documents(cfg.data, cfg.seed), m.eval.holdout_docs)
        self.stream = DocumentStream(texts, tokenizer, min_tokens=m.min_context + 1, seed=cfg.seed)
        pad, budget = ctx.pad_id, ctx.max_tokens_per_micro_batch
        docs = self.stream.docs
        if m.entropy_filter:
            proxy = load_proxy(m.proxy_model, tokenizer, ctx.policy)
            cache = Path(m.entropy_cache_dir) if m.entropy_cache_dir else cache_root(cfg.model) / "rpt-entropy"
            entropies = position_entropies(docs, proxy, pad, m, cache, proxy_identity(cfg), budget,
                                           progress=cfg.tracking.progress)
            hard = hard_positions(entropies, m.entropy_threshold, len(docs))
            self.positions = [[p for p in ps if p >= m.min_context] for ps in hard]
            if proxy is not ctx.policy:
                del proxy
        else:
            self.positions = [list(range(m.min_context, len(d))) for d in docs]
        total = sum(len(p) for p in self.positions)
        if not total:
            raise DataError(f"no position has proxy entropy >= method.entropy_threshold={m.entropy_threshold} "
                            f"(after min_context={m.min_context}); lower the threshold")
        self.usable_docs = sum(1 for p in self.positions if p)
        log.info("RPT: %d training positions in %d of %d documents", total, self.usable_docs, len(docs))
        self.rewards = build_rewards(m.rewards)
        self.needs_prob = any(r.name == "next_token_prob" for r in self.rewards)
        self.scorer = TeacherForcedScorer(ctx.policy, pad, budget)
        self.sampling = SamplingParams(
            max_new_tokens=cfg.rollout.max_new_tokens, temperature=cfg.rollout.temperature, top_p=cfg.rollout.top_p,
            n=m.group_size, stop_token_ids=[tokenizer.eos_token_id], stop_strings=list(cfg.rollout.stop_strings))

    # ------------------------------------------------------------ contexts

    def _contexts(self, n: int, rng: random.Random) -> list[tuple[list[int], list[int]]]:
        """n (context ids, target ids) pairs from the next documents that have a hard position."""
        m, out = self.cfg, []
        while len(out) < n:
            for doc_index, _ in self.stream.take(n - len(out)):
                if self.positions[doc_index]:
                    doc = self.stream.docs[doc_index]
                    t = rng.choice(self.positions[doc_index])
                    out.append((doc[max(0, t - m.max_context):t], doc[t:t + m.target_tokens]))
        return out

    def prompt_ids(self, context_ids: list[int]) -> list[int]:
        text = build_prompt(self.tokenizer, self.cfg.template, self.tokenizer.decode(context_ids), self.cfg.think_open)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    # ------------------------------------------------------------ one round: contexts -> scored groups

    def _sample_groups(self, step: int, n: int, round_: int, engine: RolloutEngine) -> RolloutBatch:
        """One round: n contexts, group_size scored samples each (group k: the k-th context)."""
        suffix = "" if round_ == 0 else f"/{round_}"
        rng = random.Random(derive_seed(self.seed, step, "positions" + suffix))
        pairs = self._contexts(n, rng)
        prompts = [self.prompt_ids(ctx) for ctx, _ in pairs]
        params = SamplingParams(**{**self.sampling.__dict__, "seed": derive_seed(self.seed, step, "sampling" + suffix)})
        t0 = time.perf_counter()
        generations = engine.generate(prompts, params)
        t1 = time.perf_counter()
        decode = self.tokenizer.decode
        rows = []  # one per sample
        for k, ((ctx, target), prompt, samples) in enumerate(zip(pairs, prompts, generations)):
            # once per context, not per sample: a context decodes up to max_context tokens
            target_bytes, prompt_text, target_text = token_bytes(self.tokenizer, target), decode(prompt), decode(target)
            for s in samples:
                text = decode(s.token_ids, skip_special_tokens=False)
                rows.append({"prompt_ids": prompt, "completion_ids": s.token_ids, "logprobs": s.logprobs,
                             "finish": s.finish_reason, "text": text, "prediction": extract_boxed(text, self.cfg.think_close),
                             "context_ids": ctx, "target_ids": target, "target_bytes": target_bytes, "group": k,
                             "prompt_text": prompt_text, "target_text": target_text})
        inputs = {"predictions": [r["prediction"] for r in rows],
                  "target_token_bytes": [r["target_bytes"] for r in rows],
                  "target_ids": [r["target_ids"] for r in rows]}
        if self.needs_prob:
            inputs["prediction_first_token_prob"] = self._first_token_probs(rows)
        rewards, per_fn = combine_rewards(self.rewards, [r["prompt_text"] for r in rows],
                                          [r["text"] for r in rows], inputs,
                                          completion_ids=[r["completion_ids"] for r in rows], step=step)
        columns = {
            "prediction": [r["prediction"] for r in rows],
            "format_error": [r["prediction"] is None for r in rows],
            "target_ids": [r["target_ids"] for r in rows],
            "target_text": [r["target_text"] for r in rows],
        }
        columns.update({f"reward/{name}": values for name, values in per_fn.items()})
        return RolloutBatch(
            prompt_ids=[r["prompt_ids"] for r in rows], completion_ids=[r["completion_ids"] for r in rows],
            sampling_logprobs=[r["logprobs"] for r in rows], finish_reasons=[r["finish"] for r in rows],
            rewards=rewards, group=[r["group"] for r in rows], policy_version=self.ctx.version, columns=columns,
            timings={"time/generate": t1 - t0, "time/score": time.perf_counter() - t1}, temperature=params.temperature)

    def _first_token_probs(self, rows) -> list[float]:
        probs = [0.0] * len(rows)
        seqs, where = [], []
        for i, r in enumerate(rows):
            if r["prediction"]:
                y = self.tokenizer(r["prediction"], add_special_tokens=False)["input_ids"]
                if y and r["context_ids"]:
                    seqs.append(r["context_ids"] + y[:1])
                    where.append(i)
        if seqs:
            logp = self.scorer.tail_logprobs(seqs, 1)[:, 0]
            for i, lp in zip(where, logp.tolist()):
                probs[i] = math.exp(lp)
        return probs

    # ------------------------------------------------------------ the Method interface

    def rollout(self, step: int, engine: RolloutEngine) -> RolloutBatch:
        m = self.cfg
        started = time.perf_counter()
        active = m.dynamic_sampling_from_step is not None and step >= m.dynamic_sampling_from_step
        if active:  # the rounds' timings are summed
            batch = dynamic_sample_batch(lambda n, r: self._sample_groups(step, n, r, engine),
                                         target=m.contexts_per_step, max_rounds=m.dynamic_sampling_max_rounds)
        else:
            batch = self._sample_groups(step, m.contexts_per_step, 0, engine)
        batch.stats = {"dynamic_sampling/active": float(active), **batch.stats}
        batch.timings["time/rollout_all_rounds"] = time.perf_counter() - started
        return batch

    def metrics(self, batch: RolloutBatch) -> dict[str, float]:
        n = len(batch)
        predictions = [p for p in batch.columns["prediction"] if p is not None]
        groups: dict[int, list[float]] = {}
        for g, r in zip(batch.group, batch.rewards):
            groups.setdefault(g, []).append(r)
        return {
            "format_error_frac": sum(batch.columns["format_error"]) / n,
            "response_len_mean": statistics.fmean(len(c) for c in batch.completion_ids),
            "response_truncated_frac": batch.finish_reasons.count("length") / n,
            "prediction_chars_mean": statistics.fmean(len(p) for p in predictions) if predictions else 0.0,
            "groups_all_equal_frac": sum(max(v) == min(v) for v in groups.values()) / len(groups),
        }

    def state_dict(self) -> dict:
        return {"stream": self.stream.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.stream.load_state_dict(state["stream"])
