"""AZR through the whole loop on the small embedded model (real engine, real sandbox): two steps of
`method=azr`, the seeding phase's bound, and exact resume with buffers."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import SMALL_MODEL, compose_cfg
from rlpretrain.loop import train
from rlpretrain.methods.azr.method import SeedingError
from rlpretrain.methods.azr.tasks import Task
from rlpretrain.tracking import read_metrics

pytestmark = pytest.mark.slow


@pytest.fixture
def azr_cfg(model_cache, tmp_path):
    def make(*overrides: str, run_dir: Path | None = None):
        return compose_cfg(
            "experiment=azr_quickstart", "model=tiny", *SMALL_MODEL, f"model.cache_dir={model_cache}",
            f"run_dir={run_dir or tmp_path / 'run'}", "method.prompt_format=none", "method.max_prompt_tokens=200",
            "method.batch_per_task_role=2", "method.seed_batch_per_type=2", "method.learnability_rollouts=2",
            "method.seed_buffer_size=0",
            "method.heldout_per_type=0", "method.sandbox.workers=1", "rollout.max_new_tokens=12",
            "checkpoint.dtype=float32", "checkpoint.optimizer=true", "tracking.progress=false", *overrides)
    return make


def test_two_steps_of_azr(azr_cfg, tmp_path):
    cfg = azr_cfg("trainer.max_steps=2", "dump_rollouts=true")
    summary = train(cfg)
    rows = read_metrics(tmp_path / "run")
    assert summary.steps == 2 and [r["policy_version"] for r in rows] == [1, 2]
    for r in rows:
        for t in ("deduction", "abduction", "induction"):
            assert 0.0 <= r[f"azr/valid_rate/{t}"] <= 1.0 and r[f"azr/buffer/{t}"] >= (0 if t == "induction" else 1)
    records = [json.loads(line) for line in (tmp_path / "run/rollouts/step_000001.jsonl").read_text().splitlines()]
    # 2 proposals per task type, 2 solver samples for deduction and abduction (induction's buffer is empty)
    assert sorted(rec["role"] for rec in records) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert {(rec["task_type"], rec["azr_role"]) for rec in records if rec["role"] == 5} == set()
    assert all(rec["reward"] == -1.0 for rec in records if not rec["well_formed"])  # the format-error reward
    timings = read_metrics(tmp_path / "run", "timings.jsonl")
    assert all(0.0 <= t["time/execute_share"] <= 1.0 and t["time/azr_step"] > 0 for t in timings)


def test_seeding_that_never_validates_is_a_clear_error(azr_cfg):
    cfg = azr_cfg("trainer.max_steps=1", "method.seed_buffer_size=3", "method.seed_max_rounds=1")
    with pytest.raises(SeedingError, match=r"after 1 rounds of 2 proposals per task type the buffers hold "
                                           r"deduction=1, abduction=1, induction=0 \(method.seed_buffer_size=3"):
        train(cfg)


def _inject_tasks(checkpoint: Path) -> None:
    """Give the buffers tasks, as if proposals had validated, so that resuming has buffers to restore."""
    state = torch.load(checkpoint / "state.pt", weights_only=False)
    buffers = state["method"]["buffers"]
    for i in range(5):
        for t in ("deduction", "abduction"):
            buffers[t]["tasks"].append(Task(t, f"def f(a):\n    return a * {i}", "2", 2 * i).to_dict())
        buffers["induction"]["tasks"].append(Task("induction", f"def f(a):\n    return a - {i}", inputs=("1", "2"),
                                                  outputs=(1 - i, 2 - i), message="subtracts", visible=1).to_dict())
    for b in buffers.values():
        b["added"] = len(b["tasks"])
    torch.save(state, checkpoint / "state.pt")


def test_resume_is_exact_with_buffers(azr_cfg, tmp_path):
    full, half = tmp_path / "full", tmp_path / "half"
    train(azr_cfg("trainer.max_steps=2", "checkpoint.every=1", run_dir=full))
    _inject_tasks(full / "checkpoints/step_000002")
    shutil.copytree(full, half)
    train(azr_cfg("trainer.max_steps=4", "checkpoint.every=1", "resume=auto", run_dir=full))
    train(azr_cfg("trainer.max_steps=3", "checkpoint.every=1", "resume=auto", run_dir=half))  # stopped after step 3
    train(azr_cfg("trainer.max_steps=4", "checkpoint.every=1", "resume=auto", run_dir=half))
    a, b = read_metrics(full), read_metrics(half)
    assert [r["step"] for r in a] == [1, 2, 3, 4] and a == b
    assert a[2]["azr/buffer/induction"] == 5 and "azr/solve_acc/induction" in a[2]  # the injected tasks were drawn
    sa = torch.load(full / "checkpoints/step_000004/state.pt", weights_only=False)["method"]
    sb = torch.load(half / "checkpoints/step_000004/state.pt", weights_only=False)["method"]
    assert sa == sb and len(sa["buffers"]["deduction"]["tasks"]) == 6
    wa = load_file(full / "checkpoints/step_000004/policy/model.safetensors")
    wb = load_file(half / "checkpoints/step_000004/policy/model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


HELDOUT = {"deduction": [Task("deduction", "def f(a):\n    return a * 2", "3", 6)],
           "abduction": [Task("abduction", "def f(a):\n    return a + 1", "1", 2)],
           "induction": [Task("induction", "def f(a):\n    return -a", inputs=("1", "2"), outputs=(-1, -2),
                              message="negates", visible=1)]}


def check_heldout_evaluation(run_dir: Path, last: str) -> dict:
    """Freeze hand-made held-out tasks into a trained run and score its first and last checkpoint."""
    from rlpretrain.methods.azr.heldout import evaluate_run

    (run_dir / "azr").mkdir(parents=True, exist_ok=True)
    (run_dir / "azr" / "heldout.json").write_text(json.dumps({t: [x.to_dict() for x in v] for t, v in HELDOUT.items()}))
    out = evaluate_run(run_dir)
    assert [out[label]["checkpoint"] for label in ("before", "after")] == ["step_000000", last]
    for label in out:
        assert list(out[label]["types"]) == list(HELDOUT)
        for v in out[label]["types"].values():
            assert v["tasks"] == 1 and 0 <= v["right"] <= v["well_formed"] <= 1
    assert json.loads((run_dir / "azr" / "heldout_eval.json").read_text()) == out
    return out


def test_heldout_evaluation_scores_the_first_and_the_last_checkpoint(azr_cfg, tmp_path):
    train(azr_cfg("trainer.max_steps=1"))
    check_heldout_evaluation(tmp_path / "run", "step_000001")
