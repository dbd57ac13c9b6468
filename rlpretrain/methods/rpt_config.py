"""RPT's schema (method=rpt): the method, its hard-position filter, its format warm-up and its evaluation.

A module of its own beside rpt.py so that the schema (read by rpt.py, rpt_warmup.py and, as plain
values, the evaluation) does not change with the method's code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from rlpretrain.checks import require
from rlpretrain.methods.base import RewardSpec


@dataclass
class RPTEvalConfig:
    """Next-token accuracy on held-out positions (RPT Table 1), run by the rpt job before/after training."""
    before: bool = False
    after: bool = False
    holdout_docs: int = 0  # the last N documents of the corpus are held out of training for evaluation
    num_positions: int = 200  # held-out positions drawn among those above the lowest threshold
    thresholds: list[float] = field(default_factory=lambda: [0.5, 1.0, 1.5])  # easy / medium / hard (nested)
    modes: list[str] = field(default_factory=lambda: ["standard", "reasoning"])
    samples: int = 1  # reasoning: sampled responses per position (accuracy is their mean; pass@k if > 1)
    temperature: Optional[float] = None  # reasoning; null: rollout.temperature
    max_new_tokens: Optional[int] = None  # reasoning; null: rollout.max_new_tokens

    def __post_init__(self):
        require(self.holdout_docs >= 0, "holdout_docs", ">= 0", self.holdout_docs)
        require(self.num_positions >= 1, "num_positions", ">= 1", self.num_positions)
        require(self.samples >= 1, "samples", ">= 1", self.samples)
        require(self.temperature is None or self.temperature >= 0, "temperature", ">= 0 (0: greedy) or null",
                self.temperature)


@dataclass
class RPTFormatWarmupConfig:
    """Optional next-token warm-up of the starting model on RPT-formatted responses (for the tiny model,
    which has never seen the prompt or \\boxed{}). Off (steps 0) unless an experiment sets it."""
    steps: int = 0
    examples: int = 2000
    lr: float = 1.0e-3
    batch_size: int = 16
    useful_prob: float = 0.5  # arithmetic contexts: digit-wise thought vs filler (as the embedded build)

    def __post_init__(self):
        require(self.steps >= 0, "steps", ">= 0 (0: off)", self.steps)
        require(self.batch_size >= 1, "batch_size", ">= 1", self.batch_size)


@dataclass
class RPTConfig:
    name: str = "rpt"
    contexts_per_step: int = 16  # B (paper: 256)
    group_size: int = 8  # G (paper: 8)
    template: str = "v0"  # v0 | candidates | concise (rlpretrain/prompts/rpt.py)
    min_context: int = 8
    max_context: int = 4096  # context tokens kept before t
    target_tokens: int = 32  # continuation tokens a prediction may match (prefix matching)
    think_open: str = "<think>"
    think_close: str = "</think>"
    rewards: list[RewardSpec] = field(default_factory=lambda: [RewardSpec(name="prefix_match")])
    # hard-position filter: proxy top-k entropy
    entropy_filter: bool = True
    entropy_threshold: float = 0.5  # the paper gives none; positions with H < threshold are dropped
    entropy_top_k: int = 16
    proxy_model: Optional[str] = None  # null: the policy's initial model
    entropy_cache_dir: Optional[str] = None  # null: <model.cache_dir or ~/.cache/rlpretrain>/rpt-entropy/<key>
    entropy_shard_docs: int = 256
    entropy_window: int = 2048
    # dynamic sampling (drop groups with all-equal rewards, refill): from this step on; null: never
    dynamic_sampling_from_step: Optional[int] = None
    dynamic_sampling_max_rounds: int = 4
    eval: RPTEvalConfig = field(default_factory=RPTEvalConfig)
    format_warmup: RPTFormatWarmupConfig = field(default_factory=RPTFormatWarmupConfig)

    def __post_init__(self):
        require(self.contexts_per_step >= 1, "contexts_per_step", ">= 1", self.contexts_per_step)
        require(self.min_context >= 1, "min_context", ">= 1", self.min_context)
        require(self.max_context >= self.min_context, "max_context", f">= min_context ({self.min_context})",
                self.max_context)
        require(self.target_tokens >= 1, "target_tokens", ">= 1", self.target_tokens)
        require(self.dynamic_sampling_max_rounds >= 1, "dynamic_sampling_max_rounds", ">= 1",
                self.dynamic_sampling_max_rounds)
