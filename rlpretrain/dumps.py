"""Rollout dumps: one JSONL file per step, one record per sample, to inspect and re-score."""

from __future__ import annotations

import json
from pathlib import Path

from rlpretrain.rollout.batch import RolloutBatch


def dump_rollouts(run_dir: Path, step: int, batch: RolloutBatch) -> Path:
    directory = run_dir / "rollouts"
    directory.mkdir(exist_ok=True)
    path = directory / f"step_{step:06d}.jsonl"
    with path.open("w") as f:
        for record in batch.records():
            f.write(json.dumps({"step": step, **record}) + "\n")
    return path
