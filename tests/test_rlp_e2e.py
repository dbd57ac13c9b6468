"""RLP through the whole loop on the small embedded model: dumps, determinism, exact resume."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from rlpretrain.loop import train
from rlpretrain.tracking import read_metrics

pytestmark = pytest.mark.slow


def _weights(run_dir: Path, step: int, name: str = "policy") -> dict:
    return load_file(run_dir / "checkpoints" / f"step_{step:06d}" / name / "model.safetensors")


def _dump(run_dir: Path, step: int) -> list[dict]:
    return [json.loads(l) for l in (run_dir / "rollouts" / f"step_{step:06d}.jsonl").read_text().splitlines()]


@torch.no_grad()
def _tail_logprob(model, ids: list[int]) -> float:
    """log p(last token | the rest): plain transformers, one unpadded sequence."""
    logits = model(input_ids=torch.tensor([ids[:-1]])).logits[0, -1]
    return float(torch.log_softmax(logits, -1)[ids[-1]])


def test_dump_rescored_independently_from_saved_weights(small_cfg, tmp_path):
    cfg = small_cfg("dump_rollouts=true", "checkpoint.every=2", "trainer.max_steps=3")
    run = Path(cfg.run_dir)
    train(cfg)
    ckpts = run / "checkpoints"
    # step 1 was produced by version 0 (EMA = policy at init); step 3 by version 2 (its checkpoint has both)
    for step, version in [(1, 0), (3, 2)]:
        records = _dump(run, step)
        assert len(records) == 4 * 3 and all(r["policy_version"] == version for r in records)
        ckpt = ckpts / f"step_{version:06d}"
        policy = AutoModelForCausalLM.from_pretrained(ckpt / "policy").eval()
        ema = AutoModelForCausalLM.from_pretrained(ckpt / ("ema" if version else "policy")).eval()
        groups: dict[int, list[dict]] = {}
        for r in records:
            groups.setdefault(r["group"], []).append(r)
            prompt, thought = r["prompt_ids"], r["completion_ids"]
            assert r["scored_ids"][:len(prompt) + len(thought)] == prompt + thought
            assert r["scored_ids"][-1:] == r["target_ids"] and r["baseline_ids"] == prompt[:-1] + r["target_ids"]
            assert _tail_logprob(policy, r["scored_ids"]) == pytest.approx(r["s_pred"], abs=2e-5)
            assert _tail_logprob(ema, r["baseline_ids"]) == pytest.approx(r["s_ema"], abs=2e-5)
            assert r["reward"] == pytest.approx(r["s_pred"] - r["s_ema"], abs=1e-6)
        for members in groups.values():  # RLOO advantage, recomputed by hand
            g = len(members)
            for r in members:
                others = [o["reward"] for o in members if o is not r]
                assert r["advantage"] == pytest.approx(r["reward"] - sum(others) / (g - 1), abs=1e-5)


def test_same_seed_same_metrics(small_cfg, tmp_path):
    a = small_cfg("seed=5", run_dir=tmp_path / "a")
    b = small_cfg("seed=5", run_dir=tmp_path / "b")
    c = small_cfg("seed=6", run_dir=tmp_path / "c")
    for cfg in (a, b, c):
        train(cfg)
    text = lambda cfg: (Path(cfg.run_dir) / "metrics.jsonl").read_text()
    assert text(a) == text(b)
    assert text(a) != text(c)


def test_resume_is_exact(small_cfg, tmp_path):
    full = small_cfg("trainer.max_steps=4", "checkpoint.every=2", run_dir=tmp_path / "full")
    train(full)
    half = small_cfg("trainer.max_steps=2", "checkpoint.every=2", run_dir=tmp_path / "half")
    train(half)
    resumed = small_cfg("trainer.max_steps=4", "checkpoint.every=2", "resume=auto", run_dir=tmp_path / "half")
    train(resumed)
    assert read_metrics(tmp_path / "full") == read_metrics(tmp_path / "half")
    for name in ("policy", "ema"):
        a, b = _weights(tmp_path / "full", 4, name), _weights(tmp_path / "half", 4, name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    opt_a = torch.load(tmp_path / "full/checkpoints/step_000004/state.pt", weights_only=False)["learner"]
    opt_b = torch.load(tmp_path / "half/checkpoints/step_000004/state.pt", weights_only=False)["learner"]
    assert opt_a["version"] == opt_b["version"] == 4
    for sa, sb in zip(opt_a["optimizer"]["state"].values(), opt_b["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"])


def test_interrupted_checkpoint_write_leaves_previous_usable(small_cfg, tmp_path):
    cfg = small_cfg("trainer.max_steps=2", "checkpoint.every=1", run_dir=tmp_path / "r")
    train(cfg)
    root = tmp_path / "r" / "checkpoints"
    # a write that died half-way: only the temporary directory exists
    (root / ".tmp-step_000003" / "policy").mkdir(parents=True)
    from rlpretrain.checkpoint import resolve_resume
    assert resolve_resume(root, "auto").name == "step_000002"
