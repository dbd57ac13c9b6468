"""rlpretrain-eval and rlpretrain-plot on every kind of run: RLP, next-token (NTP), TPT's pipeline
(RPT: tests/test_rpt_e2e.py), with the run's own settings as their defaults."""

import json
from pathlib import Path

import pytest
from conftest import SMALL_MODEL, compose_cfg

from rlpretrain.eval.cli import main as eval_main
from rlpretrain.plot import main as plot_main
from rlpretrain.jobs import run

pytestmark = pytest.mark.slow

TINY_NTP = ["method.seq_len=64", "method.batch_size=2", "method.token_budget=256", "method.eval_docs=8",
            "method.eval_source={label: heldout, source: synthetic_arithmetic, num_docs: 20, seed: 7}"]


def _eval(ckpt: Path, out: Path, *flags: str) -> dict:
    assert eval_main([str(ckpt), "--out", str(out), "--modes", "standard", "--num-positions", "6", *flags]) == 0
    return json.loads((out / "next_token_accuracy.json").read_text())


def _plot(run_dir: Path, capsys) -> None:
    capsys.readouterr()
    plot_main([str(run_dir)])
    assert capsys.readouterr().out.strip() == str(run_dir / "curves.png")
    assert (run_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_eval_and_plot_on_rlp_run(small_cfg, tmp_path, capsys):
    cfg = small_cfg("trainer.max_steps=1", "seed=2")
    run(cfg)
    result = _eval(Path(cfg.run_dir) / "checkpoints" / "step_000001" / "policy", tmp_path / "ev")
    # the default experiment's kind of run has no method.eval: documents are a fresh synthetic corpus
    assert result["num_positions"] == 6 and result["rows"][0]["mode"] == "standard"
    _plot(Path(cfg.run_dir), capsys)


def test_eval_and_plot_on_ntp_and_tpt_runs(model_cache, tmp_path, capsys):
    ntp = compose_cfg(*SMALL_MODEL, f"model.cache_dir={model_cache}", "experiment=tpt_ntp_quickstart",
                      f"run_dir={tmp_path / 'ntp'}", "tracking.progress=false", "data.num_docs=40", *TINY_NTP)
    run(ntp)
    result = _eval(tmp_path / "ntp" / "checkpoints" / "step_000002" / "policy", tmp_path / "ev-ntp")
    assert result["num_docs"] == 20  # the run's held-out source (method.eval_source), not a default corpus
    _plot(tmp_path / "ntp", capsys)

    tpt = compose_cfg(*SMALL_MODEL, f"model.cache_dir={model_cache}", "experiment=tpt_quickstart",
                      f"run_dir={tmp_path / 'tpt'}", "tracking.progress=false", "data.num_docs=8",
                      "method.generate.max_thinking_tokens=4", "method.generate.shard_size=8",
                      "method.generate.batch_size=8", "method.arms=[vanilla,tpt,shuffled]",
                      *[o.replace("method.", "method.train.") for o in TINY_NTP])
    run(tpt)
    out = capsys.readouterr().out
    assert "  tpt - shuffled: " in out and "the shuffled arm is the control" in out
    from rlpretrain.methods.tpt.generate import load_shards
    mine, control = load_shards(tmp_path / "tpt" / "thinking"), load_shards(tmp_path / "tpt" / "thinking_shuffled")
    assert control["doc_id"] == mine["doc_id"] and control["text"] == mine["text"]
    import random
    from rlpretrain.seeding import derive_seed
    order = list(range(8))
    random.Random(derive_seed(0, 0, "tpt_shuffled_thoughts")).shuffle(order)  # seed 0: the run's
    assert order != list(range(8)) and control["thinking"] == [mine["thinking"][i] for i in order]
    for arm in ("vanilla", "tpt", "shuffled"):
        result = _eval(tmp_path / "tpt" / arm / "checkpoints" / "step_000002" / "policy", tmp_path / f"ev-{arm}")
        assert result["num_docs"] == 20
    _plot(tmp_path / "tpt", capsys)  # one figure, a line per arm


def test_plot_on_a_directory_without_runs(tmp_path):
    with pytest.raises(SystemExit) as e:
        plot_main([str(tmp_path)])
    assert e.value.code == f"error: {tmp_path} has no metrics.jsonl, nor sub-runs with one (is it a run directory?)"
