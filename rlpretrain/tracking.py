"""Metrics: metrics.jsonl in the run directory (always), TensorBoard (default), Weights & Biases (opt-in).

metrics.jsonl holds only what the seed determines, so two runs with one seed write identical files;
wall-clock figures (time/*, tokens_per_s) go to timings.jsonl.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TrackingConfig:
    """The `tracking` group."""
    tensorboard: bool = True
    wandb: bool = False
    wandb_project: str = "rlpretrain"
    progress: bool = True


class Tracker:
    def __init__(self, run_dir: Path, cfg, config_dict: dict, resume_from_step: int = 0):
        self.path = run_dir / "metrics.jsonl"
        self.timings_path = run_dir / "timings.jsonl"
        for path in (self.path, self.timings_path):
            _truncate_after(path, resume_from_step)
        self.tb = None
        self.wandb = None
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        if cfg.wandb:
            import wandb
            self.wandb = wandb.init(project=cfg.wandb_project, config=config_dict, dir=str(run_dir))

    def log(self, step: int, metrics: dict[str, float], timings: dict[str, float]) -> None:
        _append(self.path, step, metrics)
        _append(self.timings_path, step, timings)
        for key, value in {**metrics, **timings}.items():
            if self.tb and not math.isnan(value):
                self.tb.add_scalar(key, value, step)
        if self.wandb:
            self.wandb.log({**metrics, **timings}, step=step)

    def close(self) -> None:
        if self.tb:
            self.tb.close()
        if self.wandb:
            self.wandb.finish()


def _append(path: Path, step: int, values: dict[str, float]) -> None:
    with path.open("a") as f:
        f.write(json.dumps({"step": step, **values}) + "\n")


def _truncate_after(path: Path, step: int) -> None:
    """On resume, drop lines the interrupted run wrote past the checkpoint: they will be redone."""
    if path.exists():
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in kept))


def read_metrics(run_dir: Path, name: str = "metrics.jsonl") -> list[dict]:
    path = Path(run_dir) / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
