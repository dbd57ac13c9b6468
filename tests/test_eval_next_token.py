"""RPT's next-token accuracy (Table 1) through the suite: the `next_token` benchmark on an RPT run's
own positions gives what the rpt job's evaluation gives (standard mode, the small model, the real HF
engine); reasoning mode's extraction and prefix-match scoring on hand-written responses; the loader
on a positions fixture in the rpt job's schema, and its errors."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import compose_cfg, small_run
from rlpretrain.config import RolloutConfig
from rlpretrain.eval.benchmarks import BENCHMARKS, GRADERS
from rlpretrain.eval.config import BenchmarkRunConfig, EvalConfig
from rlpretrain.eval.suite import evaluate_suite
from rlpretrain.rollout.hf import HFEngine

FIXTURE = Path(__file__).parent / "fixtures" / "eval" / "next_token_positions.json"
RPT = ["experiment=rpt_quickstart", "method.format_warmup.steps=0", "method.eval.holdout_docs=10",
       "method.eval.num_positions=40", "method.eval.before=false", "data.num_docs=40",
       "method.eval.thresholds=[1.0,2.0,2.6]"]  # the small model's entropies lie in 1.6-2.7: three different splits


@pytest.fixture(scope="module")
def rpt_run(model_cache, tmp_path_factory):
    """An RPT run directory (run.yaml) whose evaluation chose its held-out positions (eval/positions.json),
    by the rpt job's own code; with its state (documents, positions, options) and the model."""
    from rlpretrain.eval.next_token_accuracy import evaluate_run_start
    from rlpretrain.models.loading import load_model_and_tokenizer
    from rlpretrain.run.record import write_record

    run_dir = tmp_path_factory.mktemp("rpt-run")
    cfg = compose_cfg(*small_run(model_cache, run_dir), *RPT)
    write_record(run_dir, OmegaConf.to_container(cfg, resolve=True))
    state = evaluate_run_start(cfg)
    tokenizer, model = load_model_and_tokenizer(cfg.model, torch.device("cpu"))
    return run_dir, state, tokenizer, model


def loaded(tokenizer, path, limit=None):
    bench = BENCHMARKS.get("next_token")()
    bench.use_tokenizer(tokenizer)
    return bench, bench.load(str(path), limit)


def test_suite_standard_accuracy_equals_the_rpt_evaluation(rpt_run, tmp_path):
    from rlpretrain.eval.next_token_accuracy import evaluate_model, standard_correct

    run_dir, state, tokenizer, model = rpt_run
    opts = dataclasses.replace(state["opts"], modes=("standard",))
    old = evaluate_model(model, tokenizer, state["docs"], state["items"], opts)
    per_item = standard_correct(model, state["docs"], state["items"], opts, tokenizer.pad_token_id)
    suite = EvalConfig(suite="rpt_next_token", batch_size=8, benchmarks=[BenchmarkRunConfig(
        name="next_token", template="standard", max_new_tokens=1, local_path=str(run_dir / "eval" / "positions.json"))])
    engine = HFEngine(OmegaConf.structured(RolloutConfig()), model, tokenizer)
    results = evaluate_suite(suite, engine, tokenizer, tmp_path, {"model": {}}, progress=False)

    records = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(records) == len(state["items"]) == 40
    for r, it, correct in zip(records, state["items"], per_item):  # position by position, the same verdict
        assert r["example_id"] == f"{it.doc}:{it.position}" and r["score"] == correct
        assert tokenizer.decode([int(r["answer"])], skip_special_tokens=True) == r["completion"]
    assert 0 < sum(per_item) < len(per_item)  # both verdicts occur: the comparison is informative
    m = results["benchmarks"]["next_token"]
    rows = {row["split"]: row for row in old["rows"]}
    assert m["mean@1"] == pytest.approx(rows["easy"]["accuracy"])  # every position is above the lowest threshold
    for split in ("easy", "medium", "hard"):
        if rows[split]["n"]:
            assert m["by_source"][split]["n_examples"] == rows[split]["n"]
            assert m["by_source"][split]["mean@1"] == pytest.approx(rows[split]["accuracy"])
    assert rows["easy"]["n"] > rows["medium"]["n"] > rows["hard"]["n"] > 0
    assert results["protocol"]["next_token"]["grader"] == {"name": "next_token", "version": "1"}
    from rlpretrain.jobs.eval import format_results  # the eval job's printed table has the split rows
    assert f"| next_token / hard | {rows['hard']['n']} | mean@1 | {rows['hard']['accuracy']:.2f} |" in \
        format_results({**results, "model": {"checkpoint": None, "name_or_path": "small"}})


def test_reasoning_scoring_of_hand_written_responses(rpt_run):
    run_dir, state, tokenizer, _ = rpt_run
    bench, examples = loaded(tokenizer, run_dir / "eval" / "positions.json", limit=3)
    grader = GRADERS.get(bench.grader_for("reasoning"))()
    assert grader.name == "prefix_match" and bench.grader_for("standard") == "next_token"
    example, item = examples[0], state["items"][0]
    gold = state["docs"][item.doc][item.position:item.position + 2]
    one, two = tokenizer.decode(gold[:1]), tokenizer.decode(gold)  # the continuation's first token(s), as text
    assert len(one) >= 1 and two.startswith(one)
    cases = {  # response -> (extracted prediction, score)
        f"<think> the next token </think> \\boxed{{{one}}}": (one, 1.0),
        f"<think>two tokens</think>\\boxed{{{two}}}": (two, 1.0),  # a prediction may span tokens
        f"<think>x</think> \\boxed{{{one}}} and \\boxed{{{one}@}}": (f"{one}@", 0.0),  # the last box counts
        f"<think>x</think> \\boxed{{{two[:len(one) + 1]}}}": (two[:len(one) + 1], 1.0 if len(two) == len(one) + 1 else 0.0),
        "<think>x</think> \\boxed{@@}": ("@@", 0.0),
        f"\\boxed{{{one}}}": (None, 0.0),  # no </think>: a format error
        f"<think>x</think> \\boxed{{{one}": (None, 0.0),  # an unclosed box (truncated)
    }
    for response, (prediction, score) in cases.items():
        ids = tokenizer(response, add_special_tokens=False)["input_ids"]
        answer = bench.extract_sample(response, ids, "reasoning")
        assert answer == prediction, response
        assert grader.grade_batch([answer], [example]) == [score], response
    # standard: the first generated token's id against the gold id
    std = GRADERS.get("next_token")()
    gold_id = state["docs"][item.doc][item.position]
    answers = [bench.extract_sample("", ids, "standard") for ids in ([gold_id, 5], [gold_id + 1], [])]
    assert answers == [str(gold_id), str(gold_id + 1), None]
    assert std.grade_batch(answers, [example] * 3) == [1.0, 0.0, 0.0]
    # the reasoning prompt is the RPT prompt on the decoded context, ending in the thought
    prompt = bench.prompt(example, "reasoning", 0)
    assert prompt.endswith("<think>") and tokenizer.decode(state["docs"][item.doc][:item.position])[-20:] in prompt


def test_loader_reads_the_positions_fixture(rpt_run, tmp_path):
    run_dir, state, tokenizer, _ = rpt_run
    other = tmp_path / "run"
    (other / "eval").mkdir(parents=True)
    shutil.copy(run_dir / "run.yaml", other / "run.yaml")
    shutil.copy(FIXTURE, other / "eval" / "positions.json")
    bench, examples = loaded(tokenizer, other / "eval" / "positions.json")
    rows = json.loads(FIXTURE.read_text())
    docs, max_context = state["docs"], state["opts"].max_context
    assert [e.id for e in examples] == [f"{r['doc']}:{r['position']}" for r in rows]
    for e, r in zip(examples, rows):
        assert e.answer == docs[r["doc"]][r["position"]]
        assert bench.prompt(e, "standard", 0) == docs[r["doc"]][max(0, r["position"] - max_context):r["position"]]
        assert e.meta["source"] == [name for name, th in zip(("easy", "medium", "hard"), (1.0, 2.0, 2.6))
                                    if r["entropy"] > th]
    assert [e.id for e in loaded(tokenizer, other / "eval" / "positions.json", limit=2)[1]] == [e.id for e in examples[:2]]


def test_loader_errors(rpt_run, tmp_path):
    run_dir, _, tokenizer, _ = rpt_run
    bench = BENCHMARKS.get("next_token")()
    with pytest.raises(ValueError, match="call use_tokenizer"):
        bench.load(str(FIXTURE))
    bench.use_tokenizer(tokenizer)
    with pytest.raises(ValueError, match="has no hub dataset: set local_path"):
        bench.load(None)
    with pytest.raises(ValueError, match="holds no RPT run"):
        bench.load(str(FIXTURE))
    (tmp_path / "eval").mkdir()
    shutil.copy(run_dir / "run.yaml", tmp_path / "run.yaml")
    (tmp_path / "eval" / "positions.json").write_text(json.dumps([{"doc": 0, "pos": 3}]))
    with pytest.raises(ValueError, match="a JSON list of {doc, position, entropy}"):
        bench.load(str(tmp_path / "eval" / "positions.json"))
    (tmp_path / "eval" / "positions.json").write_text(json.dumps([{"doc": 99, "position": 3, "entropy": 1.0}]))
    with pytest.raises(ValueError, match="lies outside the run's 10 held-out documents"):
        bench.load(str(tmp_path / "eval" / "positions.json"))
    with pytest.raises(ValueError, match="no template 'fewshot'; available: standard, reasoning"):
        bench.grader_for("fewshot")
