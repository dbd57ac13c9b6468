"""`rlpretrain-plot RUN_DIR`: PNG curves of a run from its metrics.jsonl.

RL runs: reward, policy loss, thought length, S_pred; next-token runs: training and held-out loss.
A run directory whose runs sit one level below it (TPT's pipeline: RUN_DIR/vanilla, RUN_DIR/tpt)
gets one figure with a line per sub-run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CURVES = [("reward_mean", "reward (mean)"), ("pg_loss", "policy loss"), ("thought_len_mean", "thought length (tokens)"),
          ("s_pred_mean", "S_pred (mean log-prob with thought)"), ("ntp_loss", "next-token loss (training)"),
          ("eval_loss", "held-out next-token loss")]


def find_runs(run_dir: Path) -> dict[str, Path]:
    """label -> directory holding metrics.jsonl: the run itself, or the sub-runs one level below it."""
    run_dir = Path(run_dir)
    if (run_dir / "metrics.jsonl").exists():
        return {run_dir.name: run_dir}
    subs = {p.name: p for p in sorted(run_dir.iterdir()) if (p / "metrics.jsonl").exists()} if run_dir.is_dir() else {}
    if not subs:
        raise ValueError(f"{run_dir} has no metrics.jsonl, nor sub-runs with one (is it a run directory?)")
    return subs


def plot_run(run_dir: Path, out: Path | None = None) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rlpretrain.tracking import read_metrics

    runs = {label: read_metrics(d) for label, d in find_runs(run_dir).items()}
    curves = [(k, label) for k, label in CURVES if any(k in m for rows in runs.values() for m in rows)]
    if not curves:
        raise ValueError(f"{run_dir}: metrics.jsonl has none of {[k for k, _ in CURVES]} to plot")
    fig, axes = plt.subplots(len(curves), 1, figsize=(7, 2.4 * len(curves)), sharex=True, squeeze=False)
    for ax, (key, label) in zip(axes[:, 0], curves):
        for run, rows in runs.items():
            points = [(m["step"], m[key]) for m in rows if key in m]
            if points:
                ax.plot(*zip(*points), marker=".", linewidth=1, label=run if len(runs) > 1 else None)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
        if len(runs) > 1:
            ax.legend(fontsize=7)
    axes[-1, 0].set_xlabel("step")
    fig.suptitle(str(run_dir), fontsize=8)
    fig.tight_layout()
    out = out or Path(run_dir) / "curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="rlpretrain-plot", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("-o", "--out", type=Path, default=None, help="PNG path (default RUN_DIR/curves.png)")
    args = parser.parse_args(argv)
    try:
        print(plot_run(args.run_dir, args.out))
    except ValueError as e:
        sys.exit(f"error: {e}")
