"""RPT through the whole loop on the small embedded model, exact resume, and the eval entry point."""

import json
from pathlib import Path

import pytest

from rlpretrain.rewards.prefix_match import extract_boxed, prefix_match_reward, token_bytes
from rlpretrain.jobs import run
from rlpretrain.tracking import read_metrics

pytestmark = pytest.mark.slow

RPT = ["experiment=rpt_quickstart", "method.contexts_per_step=3", "method.group_size=3", "rollout.max_new_tokens=12",
       "method.format_warmup.steps=4", "method.format_warmup.examples=24", "method.format_warmup.batch_size=4",
       "method.eval.holdout_docs=10", "method.eval.num_positions=6", "method.eval.before=false",
       "method.eval.after=false", "method.dynamic_sampling_from_step=1", "method.dynamic_sampling_max_rounds=2",
       "method.template=concise", "data.num_docs=40", "dump_rollouts=true"]


def _dump(run_dir: Path, step: int) -> list[dict]:
    return [json.loads(l) for l in (run_dir / "rollouts" / f"step_{step:06d}.jsonl").read_text().splitlines()]


def test_rpt_run_rewards_resume_and_eval(small_cfg, tmp_path, capsys):
    from transformers import AutoTokenizer

    # one unbroken 2-step run, with the evaluation around it
    cfg = small_cfg(*RPT, "trainer.max_steps=2", "checkpoint.every=1", "method.eval.before=true",
                    "method.eval.after=true", run_dir=tmp_path / "a")
    summary = run(cfg)
    run_a = Path(cfg.run_dir)
    assert summary.steps == 2
    metrics = read_metrics(run_a)
    assert [m["dynamic_sampling/active"] for m in metrics] == [0.0, 1.0]
    assert all(0.0 <= m["format_error_frac"] <= 1.0 for m in metrics)
    tokenizer = AutoTokenizer.from_pretrained(run_a / "checkpoints" / "step_000000" / "policy")
    for step in (1, 2):
        records = _dump(run_a, step)
        assert len({r["group"] for r in records}) <= 3 and len(records) % 3 == 0
        for r in records:  # the reward, recomputed independently from the dumped ids
            text = tokenizer.decode(r["completion_ids"], skip_special_tokens=False)
            pred = extract_boxed(text)
            assert r["prediction"] == pred and r["format_error"] == (pred is None)
            assert r["reward"] == prefix_match_reward(pred, token_bytes(tokenizer, r["target_ids"]))
            assert tokenizer.decode(r["prompt_ids"]).endswith("<think>")
    out = capsys.readouterr().out
    assert "before training" in out and "after training (step_000002)" in out and "| standard |" in out
    after = json.loads((run_a / "eval" / "after.json").read_text())
    assert {r["mode"] for r in after["rows"]} == {"standard", "reasoning"}
    assert [r["split"] for r in after["rows"][:3]] == ["easy", "medium", "hard"]
    ns = [r["n"] for r in after["rows"][:3]]
    assert ns[0] >= ns[1] >= ns[2] and ns[0] == after["num_positions"]  # nested splits

    # 1 step, then resumed to 2: the same metrics and weights as the unbroken run
    for steps, resume in ((1, "null"), (2, "auto")):
        cfg_b = small_cfg(*RPT, f"trainer.max_steps={steps}", "checkpoint.every=1", f"resume={resume}",
                          run_dir=tmp_path / "b")
        run(cfg_b)
    assert read_metrics(Path(cfg_b.run_dir)) == metrics
    assert _dump(Path(cfg_b.run_dir), 2) == _dump(run_a, 2)

    # the eval entry point on a checkpoint directory: a table in markdown, JSON and CSV
    from rlpretrain.eval.cli import main
    ckpt = run_a / "checkpoints" / "step_000002" / "policy"
    assert main([str(ckpt), "--data", "synthetic", "--num-docs", "6", "--num-positions", "5",
                 "--max-new-tokens", "6", "--out", str(tmp_path / "ev"), "--template", "concise"]) == 0
    table = (tmp_path / "ev" / "next_token_accuracy.md").read_text()
    assert "| mode | easy (H > 0.5) | medium (H > 1) | hard (H > 1.5) |" in table
    assert "| standard |" in table and "| reasoning |" in table
    result = json.loads((tmp_path / "ev" / "next_token_accuracy.json").read_text())
    assert result["proxy"].endswith("step_000000/policy")  # the run's initial model, found from the path
    csv_lines = (tmp_path / "ev" / "next_token_accuracy.csv").read_text().splitlines()
    assert csv_lines[0] == "mode,split,threshold,n,accuracy" and len(csv_lines) == 7

    # with no flags, the run's own settings and positions: the table of the run's own evaluation
    assert main([str(ckpt), "--out", str(tmp_path / "ev-own")]) == 0
    own = json.loads((tmp_path / "ev-own" / "next_token_accuracy.json").read_text())
    assert own["rows"] == after["rows"] and own["num_positions"] == after["num_positions"]
    from rlpretrain.plot import main as plot_main
    plot_main([str(run_a)])
    assert (run_a / "curves.png").exists()


def test_standard_accuracy_matches_plain_argmax(small_model):
    import torch

    from rlpretrain.eval.next_token_accuracy import EvalItem, EvalOptions, evaluate_model

    tokenizer, model = small_model
    docs = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in ["12 + 34 = 46 . 46 + 34 = 80 .", "5 + 7 = 12 ."]]
    items = [EvalItem(0, 9, 2.0), EvalItem(0, 12, 0.7), EvalItem(1, 6, 1.2), EvalItem(1, 3, 0.6)]
    expected = []
    for it in items:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([docs[it.doc][:it.position]])).logits[0, -1]
        expected.append(float(int(logits.argmax()) == docs[it.doc][it.position]))
    result = evaluate_model(model, tokenizer, docs, items, EvalOptions(modes=("standard",)))
    rows = {r["split"]: r for r in result["rows"]}
    assert rows["easy"]["n"] == 4 and rows["medium"]["n"] == 2 and rows["hard"]["n"] == 1
    assert rows["easy"]["accuracy"] == pytest.approx(100 * sum(expected) / 4)
    assert rows["medium"]["accuracy"] == pytest.approx(100 * (expected[0] + expected[2]) / 2)
    assert rows["hard"]["accuracy"] == pytest.approx(100 * expected[0])
