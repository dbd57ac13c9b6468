"""TPT end to end at one token budget: generate thinking for `data`, then train a vanilla (CPT) and a
TPT model on the same documents, then compare their held-out loss on original documents."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

from rlpretrain.methods.tpt.generate import TPTGenerateConfig, format_summary as format_generation, generate_thinking
from rlpretrain.methods.tpt.ntp import NTPConfig, NTPSourceConfig, format_summary, train_ntp

ARMS = {"vanilla": False, "tpt": True}  # arm -> thinking on


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
        if not ntp.sources:
            ntp.sources = [NTPSourceConfig(label=generation_label(cfg, p), source="tpt", path=str(out))]
        results[arm] = train_ntp(cfg, ntp, run_dir / arm, placer=placer)
        print(format_summary(arm, results[arm]))
    comparison = {"generation": generation, "arms": results}
    (run_dir / "comparison.json").write_text(json.dumps(comparison, indent=2))
    return comparison


def generation_label(cfg, p) -> str:
    return p.generate.source_name or cfg.data.path or cfg.data.source
