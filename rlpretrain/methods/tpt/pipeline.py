"""TPT end to end at one token budget: generate thinking for `data`, then train a vanilla (CPT) and a
TPT model on the same documents, then compare their held-out loss on original documents."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from omegaconf import OmegaConf


from rlpretrain.methods.tpt.generate import format_summary as format_generation, generate_thinking
from rlpretrain.methods.tpt.ntp import format_summary, train_ntp

ARMS = {"vanilla": False, "tpt": True}  # arm -> thinking on


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
        if not ntp.sources:  # a merge types the new source by the node's schema
            ntp = OmegaConf.merge(ntp, {"sources": [{"label": generation_label(cfg, p), "source": "tpt", "path": str(out)}]})
        results[arm] = train_ntp(cfg, ntp, run_dir / arm, placer=placer)
        print(format_summary(arm, results[arm]))
    comparison = {"generation": generation, "arms": results}
    (run_dir / "comparison.json").write_text(json.dumps(comparison, indent=2))
    return comparison


def generation_label(cfg, p) -> str:
    return p.generate.source_name or cfg.data.path or cfg.data.source
