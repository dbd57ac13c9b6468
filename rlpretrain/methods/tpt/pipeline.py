"""TPT end to end at one token budget: generate thinking for `data`, then train a vanilla (CPT) and a
TPT model on the same documents, then compare their held-out loss on original documents."""

from __future__ import annotations

import copy
import json
from pathlib import Path


from rlpretrain.config import NTPSourceConfig
from rlpretrain.methods.tpt.generate import format_summary as format_generation, generate_thinking, load_shards
from rlpretrain.methods.tpt.ntp import format_summary, train_ntp

ARMS = {"vanilla": False, "tpt": True}  # arm -> thinking on


def run_pipeline(cfg) -> dict:
    p = cfg.method
    unknown = [a for a in p.arms if a not in ARMS]
    if unknown:
        raise ValueError(f"method.arms: unknown {unknown}; choose from {sorted(ARMS)}")
    run_dir = Path(cfg.run_dir)
    out = Path(p.generate.output_dir or run_dir / "thinking")
    generation = generate_thinking(cfg, p.generate, out)
    print(format_generation(generation))
    results = {}
    for arm in p.arms:
        ntp = copy.deepcopy(p.train)
        ntp.thinking = ARMS[arm]
        if not ntp.sources:
            ntp.sources = [NTPSourceConfig(label=generation_label(cfg, p), source="tpt", path=str(out))]
        results[arm] = train_ntp(cfg, ntp, run_dir / arm)
        print(format_summary(arm, results[arm]))
    comparison = {"generation": generation, "thoughts": thought_content(load_shards(out)["thinking"]), "arms": results}
    (run_dir / "comparison.json").write_text(json.dumps(comparison, indent=2))
    return comparison


TRIVIAL_WORDS = 3  # a thought of fewer words ("ok .", "hmm .") carries no reasoning


def thought_content(thoughts: list[str]) -> dict:
    """How many thoughts are empty, and how many more are trivial (fewer than TRIVIAL_WORDS words)."""
    words = [len(t.split()) for t in thoughts]
    return {"total": len(words), "empty": sum(w == 0 for w in words),
            "trivial": sum(0 < w < TRIVIAL_WORDS for w in words)}


def caveat(thoughts: dict) -> str:
    """What the comparison cannot tell: printed beside it."""
    share = (thoughts["empty"] + thoughts["trivial"]) / max(1, thoughts["total"])
    return (f"  caveat: {thoughts['empty']} of {thoughts['total']} thoughts are empty and {thoughts['trivial']} more "
            f"have fewer than {TRIVIAL_WORDS} words ({share:.0%} in all); one seed and no control arm (the document "
            "with a contentless thought of the same length), so the difference is not attributable to the thoughts' "
            "content: run several seeds before reading it as an effect")


def generation_label(cfg, p) -> str:
    return p.generate.source_name or cfg.data.path or cfg.data.source


def run(cfg):
    comparison = run_pipeline(cfg)
    arms = comparison["arms"]
    print(f"\n{cfg.experiment_name}: held-out next-token loss on original documents, equal token budgets")
    for arm, s in arms.items():
        print(f"  {arm:8s} {s['eval_loss_last']:.4f}   ({s['tokens_trained']} tokens trained, "
              f"{s['doc_tokens_seen']} of them document tokens)")
    if {"vanilla", "tpt"} <= set(arms):
        diff = arms["tpt"]["eval_loss_last"] - arms["vanilla"]["eval_loss_last"]
        print(f"  tpt - vanilla: {diff:+.4f} ({'TPT lower' if diff < 0 else 'TPT not lower'})")
        print(caveat(comparison["thoughts"]))
    print(f"  run dir: {cfg.run_dir}")
    return None


__all__ = ["run", "run_pipeline"]
