"""launcher=ray on a local Ray instance: two DeepSpeed learner ranks and one separate rollout
worker; after every sync the worker's weights equal the learner's (checksums per tensor)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ray")

from rlpretrain.runners import run  # noqa: E402
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
