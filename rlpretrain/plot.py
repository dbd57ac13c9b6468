"""`rlpretrain-plot RUN_DIR`: PNG curves of reward, loss and thought length from metrics.jsonl."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CURVES = [("reward_mean", "reward (mean)"), ("pg_loss", "policy loss"), ("thought_len_mean", "thought length (tokens)"),
          ("s_pred_mean", "S_pred (mean log-prob with thought)")]


def plot_run(run_dir: Path, out: Path | None = None) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rlpretrain.tracking import read_metrics

    metrics = read_metrics(run_dir)
    curves = [(k, label) for k, label in CURVES if any(k in m for m in metrics)]
    if not metrics or not curves:
        raise ValueError(f"{run_dir}/metrics.jsonl has nothing to plot")
    fig, axes = plt.subplots(len(curves), 1, figsize=(7, 2.4 * len(curves)), sharex=True)
    for ax, (key, label) in zip(list(axes) if len(curves) > 1 else [axes], curves):
        points = [(m["step"], m[key]) for m in metrics if key in m]
        ax.plot(*zip(*points), marker=".", linewidth=1)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    axes_list = list(axes) if len(curves) > 1 else [axes]
    axes_list[-1].set_xlabel("step")
    fig.suptitle(str(run_dir), fontsize=8)
    fig.tight_layout()
    out = out or run_dir / "curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="rlpretrain-plot", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("-o", "--out", type=Path, default=None, help="PNG path (default RUN_DIR/curves.png)")
    args = parser.parse_args(argv)
    if not (args.run_dir / "metrics.jsonl").exists():
        sys.exit(f"error: {args.run_dir} has no metrics.jsonl")
    print(plot_run(args.run_dir, args.out))
