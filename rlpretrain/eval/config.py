"""The `eval` config group (conf/eval/): a suite is a list of benchmark runs, each with its protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class BenchmarkRunConfig:
    name: str  # a benchmark in rlpretrain/eval/benchmarks (BENCHMARKS)
    template: Optional[str] = None  # a template of the benchmark's; null: its default
    shots: Optional[int] = None  # few-shot examples; null: the benchmark's default
    chat: bool = False  # wrap a plain-text prompt as one user turn of the tokenizer's chat template
    k: int = 1  # samples per example: pass@k, mean@k and maj@k are over these
    temperature: float = 0.0  # 0: greedy (then k must be 1)
    top_p: float = 1.0
    max_new_tokens: int = 512
    pass_k: list[int] = field(default_factory=lambda: [1])  # the k of each pass@k reported (each <= k)
    limit: Optional[int] = None  # the first `limit` examples only (a quick look, not a paper number)
    local_path: Optional[str] = None  # a json/jsonl/parquet file in the dataset's schema, instead of the hub
    fewshot_path: Optional[str] = None  # the few-shot pool from a local file, instead of the hub's split
    label: Optional[str] = None  # the name in results.json (two runs of one benchmark need two labels)
    grader: Optional[str] = None  # a grader in GRADERS instead of the benchmark's (AZR's numbers use math_equal)

    def check(self) -> None:
        if self.k < 1:
            raise ValueError(f"eval benchmark {self.name}: k must be >= 1, got {self.k}")
        if self.temperature < 0:
            raise ValueError(f"eval benchmark {self.name}: temperature must be >= 0, got {self.temperature}")
        if self.temperature == 0 and self.k > 1:
            raise ValueError(f"eval benchmark {self.name}: greedy decoding (temperature 0) gives k={self.k} "
                             "identical samples; set a temperature or k=1")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"eval benchmark {self.name}: top_p must be in (0, 1], got {self.top_p}")
        bad = [p for p in self.pass_k if not 1 <= p <= self.k]
        if bad:
            raise ValueError(f"eval benchmark {self.name}: pass_k {bad} outside 1..k={self.k}")


@dataclass
class AggregateConfig:
    """A number a paper computes from others, e.g. RLP's Overall = mean(math avg, science avg, science @1[4])."""
    name: str
    of: list[str] = field(default_factory=list)  # benchmark labels, or earlier aggregates
    metric: Optional[str] = None  # the benchmarks' metric to average (e.g. mean@8); unused for aggregates


@dataclass
class EvalConfig:
    suite: str = "none"  # the suite's name, recorded in results.json
    checkpoint: Optional[str] = None  # a policy directory (RUN/checkpoints/step_N/policy); null: `model`
    batch_size: int = 16  # prompts per engine call (each with its k samples)
    benchmarks: list[BenchmarkRunConfig] = field(default_factory=list)
    aggregates: list[AggregateConfig] = field(default_factory=list)  # computed in this order, after the benchmarks
