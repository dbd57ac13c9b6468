"""The eval job's suite runner on the small model through the real HF engine: records, metrics
against a recount from samples.jsonl, resume of a killed evaluation, and protocol errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rlpretrain.data.synthetic import arithmetic_corpus
from rlpretrain.eval.benchmarks import BENCHMARKS, GRADERS, Benchmark, DatasetSpec, Example, Grader
from rlpretrain.eval.config import BenchmarkRunConfig, EvalConfig
from rlpretrain.eval.suite import evaluate_suite
from rlpretrain.rollout.hf import HFEngine
from rlpretrain.config import RolloutConfig


class Sums(Benchmark):
    """A user's benchmark: complete "a + b =" with the sum (the small model learned arithmetic)."""
    name, grader = "sums_test", "exact_sums_test"
    dataset = DatasetSpec(hf_id="local/sums")

    def load(self, local_path=None, limit=None):
        sums = [line.split("=")[0] for doc in arithmetic_corpus(30, seed=99, think_prob=0.0)
                for line in doc.split(". ") if " + " in line][:10]
        out = [Example(id=f"s{i}", question=q.strip() + " =", answer=str(eval(q)), meta={"source": "ab"[i % 2]})
               for i, q in enumerate(sums)]
        return out[:limit] if limit else out

    def prompt(self, example, template, shots):
        return example.question

    def extract(self, completion, template=None):
        digits = completion.strip().split(" ")[0]
        return digits if digits.isdigit() else None


class ExactSums(Grader):
    """Scores 1 when the completion starts with a number (the small model is too small to get sums right
    often; starting with a number it does about half the time, which makes the counts informative)."""
    name, version = "exact_sums_test", "1"
    fail_on_call: int | None = None
    calls = 0

    def grade_batch(self, answers, examples):
        ExactSums.calls += 1
        if ExactSums.calls == ExactSums.fail_on_call:
            raise KeyboardInterrupt  # the evaluation killed between two batches
        return [float(a is not None) for a in answers]


if "sums_test" not in BENCHMARKS:
    BENCHMARKS.register("sums_test")(Sums)
    GRADERS.register("exact_sums_test")(ExactSums)


def suite(**run) -> EvalConfig:
    return EvalConfig(suite="test", batch_size=4, benchmarks=[BenchmarkRunConfig(name="sums_test", **run)])


@pytest.fixture
def engine(small_model):
    tokenizer, model = small_model
    return HFEngine(OmegaConf.structured(RolloutConfig()), model, tokenizer), tokenizer


def test_metrics_are_recounted_from_the_samples(engine, tmp_path):
    eng, tok = engine
    run = dict(k=4, temperature=1.0, max_new_tokens=4, pass_k=[1, 2, 4])
    results = evaluate_suite(suite(**run), eng, tok, tmp_path, {"model": {}}, progress=False)
    records = [json.loads(l) for l in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(records) == 40 and {r["sample_index"] for r in records} == {0, 1, 2, 3}
    by_ex = {}
    for r in records:
        assert r["score"] == float(r["completion"].strip().split(" ")[0].isdigit())
        by_ex.setdefault(r["example_id"], []).append(r)
    m = results["benchmarks"]["sums_test"]
    correct = [int(sum(r["score"] for r in g)) for g in by_ex.values()]
    assert m["mean@4"] == pytest.approx(100 * sum(correct) / 40)
    for k in (1, 2, 4):  # the closed form, 1 - C(n-c, k)/C(n, k)
        expected = sum(1 - math.comb(4 - c, k) / math.comb(4, k) for c in correct) / 10
        assert m[f"pass@{k}"] == pytest.approx(100 * expected)
    assert set(m["by_source"]) == {"a", "b"} and m["by_source"]["a"]["n_examples"] == 5
    assert 0 < m["mean@4"] < 100 and len(set(correct)) >= 3  # the counts are informative
    assert results["protocol"]["sums_test"]["grader"] == {"name": "exact_sums_test", "version": "1"}


def test_a_killed_evaluation_resumes_to_what_an_unbroken_one_writes(engine, tmp_path):
    eng, tok = engine
    run = dict(k=2, temperature=1.0, max_new_tokens=4, pass_k=[1, 2])
    whole = evaluate_suite(suite(**run), eng, tok, tmp_path / "whole", {}, progress=False)
    ExactSums.calls, ExactSums.fail_on_call = 0, 2
    with pytest.raises(KeyboardInterrupt):
        evaluate_suite(suite(**run), eng, tok, tmp_path / "killed", {}, progress=False)
    assert len((tmp_path / "killed" / "samples.jsonl").read_text().splitlines()) == 8  # the first batch of 4 x 2
    with open(tmp_path / "killed" / "samples.jsonl", "a") as f:
        f.write('{"benchmark": "sums_test", "exam')  # a line torn by the kill
    ExactSums.fail_on_call = None
    resumed = evaluate_suite(suite(**run), eng, tok, tmp_path / "killed", {}, progress=False)
    assert resumed["benchmarks"] == whole["benchmarks"]
    key = lambda r: (r["example_id"], r["sample_index"])
    rows = lambda d: sorted((json.loads(l) for l in (tmp_path / d / "samples.jsonl").read_text().splitlines()), key=key)
    assert rows("killed") == rows("whole")  # the torn line is gone, every sample is there once


@pytest.mark.parametrize("run, message", [
    (dict(k=4, temperature=0.0), "greedy decoding \\(temperature 0\\) gives k=4 identical samples"),
    (dict(k=2, temperature=1.0, pass_k=[4]), "pass_k \\[4\\] outside 1..k=2"),
    (dict(top_p=0.0), "top_p must be in \\(0, 1\\]"),
    (dict(template="fewshot"), "benchmark 'sums_test' has no template 'fewshot'; available: plain"),
])
def test_bad_protocols_fail_with_their_reason(engine, tmp_path, run, message):
    eng, tok = engine
    with pytest.raises(ValueError, match=message):
        evaluate_suite(suite(**run), eng, tok, tmp_path, {}, progress=False)


def test_in_training_evaluation_logs_beside_the_training_metrics(small_cfg, tmp_path):
    """trainer.eval_every=2 over 3 steps: the suite at steps 2 and 3 (the end), through the loop's engine."""
    from rlpretrain.jobs import run
    from rlpretrain.tracking import read_metrics

    cfg = small_cfg("trainer.max_steps=3", "trainer.eval_every=2", "+eval.benchmarks=[{name: sums_test, max_new_tokens: 4, limit: 4}]")
    run(cfg)
    rows = read_metrics(Path(cfg.run_dir))
    assert [("eval/sums_test/mean@1" in r) for r in rows] == [False, True, True]
    for step in (2, 3):
        results = json.loads((Path(cfg.run_dir) / "eval" / f"step_{step:06d}" / "results.json").read_text())
        assert rows[step - 1]["eval/sums_test/mean@1"] == results["benchmarks"]["sums_test"]["mean@1"]
    assert all("reward_mean" in r for r in rows)  # the training reward stays its own metric
    with pytest.raises(ValueError, match="has no benchmarks"):
        run(small_cfg("trainer.eval_every=2", run_dir=tmp_path / "none"))
