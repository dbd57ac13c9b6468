"""Benchmarks and graders, registered by name (rlpretrain/eval/benchmarks/base.py has the interface).
Importing this package registers every benchmark and grader."""

from rlpretrain.eval.benchmarks.base import BENCHMARKS, GRADERS, Benchmark, DatasetSpec, Example, Grader

import rlpretrain.eval.graders  # noqa: E402,F401  (registers the graders)
from rlpretrain.eval.benchmarks import coding, math_problems, multiple_choice, next_token, packaged  # noqa: E402,F401

__all__ = ["BENCHMARKS", "GRADERS", "Benchmark", "DatasetSpec", "Example", "Grader"]
