"""Benchmarks and graders, registered by name (rlpretrain/eval/benchmarks/base.py has the interface)."""

from rlpretrain.eval.benchmarks.base import BENCHMARKS, GRADERS, Benchmark, DatasetSpec, Example, Grader

__all__ = ["BENCHMARKS", "GRADERS", "Benchmark", "DatasetSpec", "Example", "Grader"]
