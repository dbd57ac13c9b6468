"""TPT end to end at one token budget: generate thinking for `data`, then train a vanilla (CPT) and a
TPT model on the same documents, then compare their held-out loss on original documents.

The `shuffled` arm (method.arms=[vanilla,tpt,shuffled]) is the control: every document with another
document's thought (a seeded permutation), so the same thinking tokens without the content that
belongs to the document; TPT's gain over it is what the thoughts' content adds.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from rlpretrain.methods.tpt.generate import TPTGenerateConfig, format_summary as format_generation, generate_thinking, load_shards
from rlpretrain.methods.tpt.ntp import NTPConfig, NTPSourceConfig, format_summary, train_ntp
from rlpretrain.seeding import derive_seed

ARMS = {"vanilla": False, "tpt": True, "shuffled": True}  # arm -> thinking on


@dataclass
class TPTPipelineConfig:
    """method=tpt_pipeline: generate thinking for `data`, then train one model per arm at one token budget, then compare."""
    name: str = "tpt_pipeline"
    generate: TPTGenerateConfig = field(default_factory=TPTGenerateConfig)
    train: NTPConfig = field(default_factory=NTPConfig)
    arms: list[str] = field(default_factory=lambda: ["vanilla", "tpt"])  # vanilla: thinking off


def run_pipeline(cfg, placer) -> dict:
    p = cfg.method
    unknown = [a for a in p.arms if a not in ARMS]
    if unknown:
        raise ValueError(f"method.arms: unknown {unknown}; choose from {sorted(ARMS)}")
    run_dir = Path(cfg.run_dir)
    out = Path(p.generate.output_dir or run_dir / "thinking")
    generation = generate_thinking(cfg, p.generate, out, placer=placer)
    print(format_generation(generation))
    results = {}
    for arm in p.arms:
        ntp = copy.deepcopy(p.train)
        ntp.thinking = ARMS[arm]
        if arm == "shuffled" and ntp.sources:
            raise ValueError("method.arms: the shuffled arm permutes the pipeline's own thinking; "
                             "leave method.train.sources empty")
        if not ntp.sources:
            path = shuffled_thinking(out, run_dir / "thinking_shuffled", cfg.seed) if arm == "shuffled" else out
            ntp.sources = [NTPSourceConfig(label=generation_label(cfg, p), source="tpt", path=str(path))]
        results[arm] = train_ntp(cfg, ntp, run_dir / arm, placer=placer)
        print(format_summary(arm, results[arm]))
    comparison = {"generation": generation, "thoughts": thought_content(load_shards(out)["thinking"]), "arms": results}
    (run_dir / "comparison.json").write_text(json.dumps(comparison, indent=2))
    return comparison


def shuffled_thinking(out: Path, dest: Path, seed: int) -> Path:
    """The generated rows with their thoughts permuted among the documents (seeded), as one shard."""
    rows = load_shards(out)
    order = list(range(len(rows)))
    random.Random(derive_seed(seed, 0, "tpt_shuffled_thoughts")).shuffle(order)
    thinking = list(rows["thinking"])  # the column once: indexing it per row re-reads it each time
    shuffled = rows.remove_columns("thinking").add_column("thinking", [thinking[i] for i in order])
    dest.mkdir(parents=True, exist_ok=True)
    shuffled.to_parquet(str(dest / "shard_000000.parquet"))
    return dest


TRIVIAL_WORDS = 3  # a thought of fewer words ("ok .", "hmm .") carries no reasoning


def thought_content(thoughts: list[str]) -> dict:
    """How many thoughts are empty, and how many more are trivial (fewer than TRIVIAL_WORDS words)."""
    words = [len(t.split()) for t in thoughts]
    return {"total": len(words), "empty": sum(w == 0 for w in words),
            "trivial": sum(0 < w < TRIVIAL_WORDS for w in words)}


def caveat(thoughts: dict, control: bool = False) -> str:
    """What the comparison cannot tell: printed beside it."""
    share = (thoughts["empty"] + thoughts["trivial"]) / max(1, thoughts["total"])
    arm = ("the shuffled arm is the control" if control else
           "no control arm (method.arms=[vanilla,tpt,shuffled] adds one: other documents' thoughts), so the "
           "difference is not attributable to the thoughts' content")
    return (f"  caveat: {thoughts['empty']} of {thoughts['total']} thoughts are empty and {thoughts['trivial']} more "
            f"have fewer than {TRIVIAL_WORDS} words ({share:.0%} in all); one seed and {arm}: run several seeds "
            "before reading a difference as an effect")


def generation_label(cfg, p) -> str:
    return p.generate.source_name or cfg.data.path or cfg.data.source
