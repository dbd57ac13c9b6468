"""RLP: reinforcement as a pretraining objective (NVIDIA, arXiv 2510.01265).

For each sampled (context x_<t, next token x_t) the policy writes G thoughts after `<think>`;
each thought is rewarded by how much it raises the log-probability of x_t over an EMA no-think
teacher. Only the thought tokens are trained (the loop's policy loss on completion tokens).
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from rlpretrain.rewards import build_rewards, combine_rewards
from rlpretrain.rewards.info_gain import information_gain_terms
from rlpretrain.data.documents import DocumentStream, load_documents
from rlpretrain.data.positions import POSITION_SAMPLERS
from rlpretrain.checks import require
from rlpretrain.methods.base import METHODS, Method, MethodContext, RewardSpec
from rlpretrain.methods.thoughts import thought_end_ids, thought_prompt_wrap, unclosed_frac
from rlpretrain.models.ema import EMATeacher
from rlpretrain.models.scorer import TeacherForcedScorer
from rlpretrain.models.special_tokens import single_token_id
from rlpretrain.rollout.base import RolloutEngine, SamplingParams
from rlpretrain.rollout.batch import RolloutBatch
from rlpretrain.seeding import derive_seed


@dataclass
class RLPConfig:
    """method=rlp."""
    name: str = "rlp"
    contexts_per_step: int = 8  # B
    group_size: int = 4  # G
    position_sampling: str = "random"  # random | stride | low_ema_prob
    stride: int = 64
    low_ema_candidates: int = 1  # low_ema_prob: sample among the k lowest-probability positions
    min_context: int = 8
    max_context: int = 2048
    think_open: str = "<think>"
    think_close: str = "</think>"
    thought_end_tokens: Optional[list[str]] = None  # also end a thought; null: a chat model's EOS + end-of-turn tokens, none without a chat template
    thought_prompt: str = "none"  # none: context then <think> | chat: in the chat template, with RLP v2's system prompt
    ema_decay: float = 0.999
    horizon: int = 1  # >1: discounted multi-token information gain (not in the paper; off)
    horizon_discount: float = 0.9
    rewards: list[RewardSpec] = field(default_factory=lambda: [RewardSpec(name="info_gain")])

    def __post_init__(self):
        require(self.contexts_per_step >= 1, "contexts_per_step", ">= 1", self.contexts_per_step)
        require(self.min_context >= 1, "min_context", ">= 1", self.min_context)
        require(self.max_context >= self.min_context, "max_context", f">= min_context ({self.min_context})",
                self.max_context)
        require(0 <= self.ema_decay <= 1, "ema_decay", "in [0, 1]", self.ema_decay)
        require(self.horizon >= 1, "horizon", ">= 1", self.horizon)


@METHODS.register("rlp")
class RLP(Method):
    def __init__(self, cfg, ctx: MethodContext):
        super().__init__(cfg, ctx)
        self.cfg = cfg.method
        self.seed = cfg.seed
        self.tokenizer = tokenizer = ctx.tokenizer
        m = self.cfg
        if m.group_size < 2:
            raise ValueError("method.group_size must be at least 2 (the advantage compares thoughts of one context)")
        POSITION_SAMPLERS.get(m.position_sampling)  # fail early on a typo
        self.open_id = single_token_id(tokenizer, m.think_open)
        self.close_id = single_token_id(tokenizer, m.think_close)
        self.wrap_before, self.wrap_after = thought_prompt_wrap(tokenizer, m.thought_prompt)
        self.stream = DocumentStream(load_documents(cfg.data, cfg.seed), tokenizer,
                                     min_tokens=m.min_context + m.horizon, seed=cfg.seed)
        self.rewards = build_rewards(m.rewards)
        self.ema = EMATeacher(m.ema_decay)
        pad, budget = ctx.pad_id, ctx.max_tokens_per_micro_batch
        self.policy_scorer = TeacherForcedScorer(ctx.policy, pad, budget)
        self.ema_scorer: TeacherForcedScorer | None = None
        self._pad, self._budget = pad, budget
        self.sampling = SamplingParams(
            max_new_tokens=cfg.rollout.max_new_tokens, temperature=cfg.rollout.temperature, top_p=cfg.rollout.top_p,
            n=m.group_size, stop_strings=list(cfg.rollout.stop_strings),
            stop_token_ids=[self.close_id] + [i for i in thought_end_ids(tokenizer, m.thought_end_tokens)
                                              if i != self.close_id],
        )

    def prepare(self, engine: RolloutEngine) -> None:
        if not self.ema.initialised:  # from the weights the first batch samples with (as the paper does)
            self.ema.init_from(self.ctx.policy.config, self.ctx.named_weights())
        if self.ema_scorer is None:
            self.ema_scorer = TeacherForcedScorer(self.ema.module, self._pad, self._budget)

    def rollout(self, step: int, engine: RolloutEngine) -> RolloutBatch:
        m = self.cfg
        rng = random.Random(derive_seed(self.seed, step, "positions"))
        picks = self.stream.take(m.contexts_per_step)
        docs = [self.stream.docs[i] for i, _ in picks]
        positions = POSITION_SAMPLERS.get(m.position_sampling)(docs, [e for _, e in picks], rng, m, self.ema_scorer)
        contexts = [doc[max(0, t - m.max_context):t] for doc, t in zip(docs, positions)]
        targets = [doc[t:t + m.horizon] for doc, t in zip(docs, positions)]

        # an engine that scores suffixes gives S_pred in the decode loop: each context runs once
        fused = engine.scores_suffixes
        params = SamplingParams(**{**self.sampling.__dict__, "seed": derive_seed(self.seed, step, "sampling"),
                                   "suffix_ids": targets if fused else None,
                                   "suffix_close_id": self.close_id if fused else None})
        t0 = time.perf_counter()
        heads = [self.wrap_before + ctx + self.wrap_after + [self.open_id] for ctx in contexts]
        generations = engine.generate(heads, params)
        t1 = time.perf_counter()

        prompt_ids, completion_ids, logprobs, finish, group = [], [], [], [], []
        scored_ids, baseline_ids, target_ids = [], [], []
        for g, (ctx, head, target, samples) in enumerate(zip(contexts, heads, targets, generations)):
            for sample in samples:
                thought = sample.token_ids  # ends at </think>, at an end-of-turn token, or at the length limit
                closed = thought if thought[-1:] == [self.close_id] else thought + [self.close_id]
                prompt_ids.append(head)
                completion_ids.append(thought)
                logprobs.append(sample.logprobs)
                finish.append(sample.finish_reason)
                group.append(g)
                scored_ids.append(head + closed + target)
                baseline_ids.append(ctx + target)
                target_ids.append(target)

        pred_tail = torch.tensor([s.suffix_logprobs for g in generations for s in g]) if fused else None
        s_pred, s_ema = information_gain_terms(self.policy_scorer, self.ema_scorer, scored_ids, baseline_ids,
                                               m.horizon, m.horizon_discount, [len(p) for p in prompt_ids], pred_tail)
        decode = self.tokenizer.decode
        columns = {
            "s_pred": s_pred.tolist(), "s_ema": s_ema.tolist(), "scored_ids": scored_ids,
            "baseline_ids": baseline_ids, "target_ids": target_ids,
            "target_text": [decode(t) for t in target_ids],
        }
        rewards, per_fn = combine_rewards(self.rewards, [decode(p) for p in prompt_ids],
                                          [decode(c, skip_special_tokens=False) for c in completion_ids], columns,
                                          completion_ids=completion_ids, step=step)
        columns.update({f"reward/{name}": values for name, values in per_fn.items()})
        return RolloutBatch(prompt_ids=prompt_ids, completion_ids=completion_ids, sampling_logprobs=logprobs,
                            finish_reasons=finish, rewards=rewards, group=group,
                            policy_version=self.ctx.version, columns=columns, temperature=params.temperature,
                            timings={"time/generate": t1 - t0, "time/score": time.perf_counter() - t1})

    def metrics(self, batch: RolloutBatch) -> dict[str, float]:
        lengths = [len(c) for c in batch.completion_ids]
        return {
            "s_pred_mean": statistics.fmean(batch.columns["s_pred"]),
            "s_ema_mean": statistics.fmean(batch.columns["s_ema"]),
            "thought_len_mean": statistics.fmean(lengths),
            "thought_truncated_frac": batch.finish_reasons.count("length") / len(batch),
            "thought_unclosed_frac": unclosed_frac(batch.completion_ids, self.close_id),
        }

    def on_optimizer_step(self) -> None:
        self.ema.update(self.ctx.named_weights())

    def state_dict(self) -> dict:
        return {"stream": self.stream.state_dict(), "ema_initialised": self.ema.initialised}

    def load_state_dict(self, state: dict) -> None:
        self.stream.load_state_dict(state["stream"])

    def save_models(self, directory: Path) -> None:
        if self.ema.initialised:
            self.ema.module.save_pretrained(directory / "ema", safe_serialization=True)

    def load_models(self, directory: Path) -> None:
        if (directory / "ema").exists():
            from transformers import AutoModelForCausalLM
            loaded = AutoModelForCausalLM.from_pretrained(directory / "ema", dtype=torch.float32).to(self.ctx.device)
            self.ema.init_from(loaded.config, loaded.state_dict().items())
            self.ema_scorer = None
