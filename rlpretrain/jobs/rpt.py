"""The rpt job: RPT's optional format warm-up, then the rl job, with the next-token-accuracy
evaluation (rlpretrain/eval/) before and after."""

from __future__ import annotations

import logging

from rlpretrain.eval.next_token_accuracy import evaluate_run_end, evaluate_run_start
from rlpretrain.jobs.rl import run_rl
from rlpretrain.loop import RunSummary
from rlpretrain.methods.rpt_warmup import ensure_format_warmup

log = logging.getLogger(__name__)


def run_rpt(cfg) -> RunSummary:
    if cfg.method.format_warmup.steps > 0:
        cfg.model.name_or_path, cfg.model.gguf_file = str(ensure_format_warmup(cfg)), None
        log.info("RPT: starting from the format-warmed model %s", cfg.model.name_or_path)
    ev = cfg.method.eval
    state = evaluate_run_start(cfg) if (ev.before or ev.after) else None
    summary = run_rl(cfg)
    if state is not None:
        evaluate_run_end(cfg, state)
    return summary
