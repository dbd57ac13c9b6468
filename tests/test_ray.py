"""launcher=ray on a local Ray instance: two DeepSpeed learner ranks and one separate rollout
worker; after every sync the worker's weights equal the learner's (checksums per tensor)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ray")

from rlpretrain.jobs import run  # noqa: E402
from rlpretrain.tracking import read_metrics  # noqa: E402

RAY = ("launcher=ray", "launcher.learner_cpus=0.5", "launcher.worker_cpus=0.5", "sync.timeout_s=120")


@pytest.mark.slow
def test_two_learner_ranks_and_a_worker_stay_in_sync(small_cfg, tmp_path):
    cfg = small_cfg(*RAY, "learner=deepspeed", "launcher.num_learners=2", "launcher.verify_sync=true",
                    "trainer.max_steps=3", "sync.bucket_mb=0.1")
    summary = run(cfg)
    checks = [json.loads(line) for line in (tmp_path / "run" / "sync_checks.jsonl").read_text().splitlines()]
    assert [c["version"] for c in checks] == [1, 2, 3] and all(c["equal"] for c in checks)
    timings = read_metrics(summary.run_dir, "timings.jsonl")
    assert len(read_metrics(summary.run_dir)) == 3
    assert all(t["sync_bytes"] > 0 for t in timings)  # weights moved by broadcast, not shared


def test_several_ranks_with_zero3_are_refused_before_start(small_cfg):
    cfg = small_cfg(*RAY, "learner=deepspeed", "launcher.num_learners=2", "learner.deepspeed.zero_stage=3")
    with pytest.raises(ValueError, match="needs learner.deepspeed.zero_stage 1 or 2"):
        run(cfg)
    with pytest.raises(ValueError, match="num_learners > 1 needs learner=deepspeed"):
        run(small_cfg(*RAY, "launcher.num_learners=2"))


def _placement(run_dir) -> dict:
    return json.loads((run_dir / "placement.json").read_text())


@pytest.mark.slow
def test_rpt_job_places_its_learner_and_engine_on_ray(small_cfg, tmp_path):
    """experiment=rpt_quickstart launcher=ray: warm-up and evaluation here, the RL steps in actors."""
    import os

    from tests.test_rpt_e2e import RPT

    cfg = small_cfg(*RPT, *RAY, "trainer.max_steps=2", "method.eval.after=true")
    summary = run(cfg)
    placed = _placement(summary.run_dir)
    assert placed["launcher"] == "ray" and placed["learner"]["ray_actor"] and placed["engine"]["ray_actor"]
    assert placed["learner"]["pid"] != os.getpid() and os.getpid() not in placed["engine"]["pids"]
    assert placed["learner"]["pid"] not in placed["engine"]["pids"]  # the worker is an actor of its own
    assert len(read_metrics(summary.run_dir)) == 2
    assert all(t["sync_bytes"] > 0 for t in read_metrics(summary.run_dir, "timings.jsonl"))
    assert (summary.run_dir / "eval" / "after.json").exists()


@pytest.mark.slow
def test_ntp_job_trains_in_a_ray_actor(model_cache, tmp_path):
    import os

    from tests.conftest import SMALL_MODEL, compose_cfg

    run_dir = tmp_path / "ntp"
    cfg = compose_cfg(*SMALL_MODEL, f"model.cache_dir={model_cache}", "experiment=tpt_ntp_quickstart",
                      f"run_dir={run_dir}", *RAY, "method.seq_len=64", "method.batch_size=4", "method.token_budget=512",
                      "method.eval_source={label: heldout, source: synthetic_arithmetic, num_docs: 20, seed: 7}",
                      "method.eval_docs=8", "tracking.progress=false")
    run(cfg)
    placed = _placement(run_dir)
    assert placed["launcher"] == "ray" and placed["learner"]["ray_actor"] and placed["learner"]["pid"] != os.getpid()
    assert "engine" not in placed  # next-token training starts no rollout worker
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 2
    with pytest.raises(ValueError, match="the ntp job trains on one learner rank"):
        run(compose_cfg(*SMALL_MODEL, "experiment=tpt_ntp_quickstart", *RAY, "launcher.num_learners=2",
                        f"run_dir={tmp_path / 'two'}"))


@pytest.mark.slow
def test_tpt_generate_through_a_ray_worker_writes_what_a_local_run_writes(model_cache, tmp_path):
    from rlpretrain.methods.tpt.generate import load_shards
    from tests.test_tpt import _gen_cfg

    run(_gen_cfg(model_cache, tmp_path / "local", "data.num_docs=8"))
    run(_gen_cfg(model_cache, tmp_path / "ray", "data.num_docs=8", *RAY))
    placed = _placement(tmp_path / "ray" / "thinking")
    assert placed["launcher"] == "ray" and placed["engine"]["workers"] == 1 and "learner" not in placed
    local, remote = load_shards(tmp_path / "local" / "thinking"), load_shards(tmp_path / "ray" / "thinking")
    assert len(remote) == 8 and local["thinking"] == remote["thinking"]
