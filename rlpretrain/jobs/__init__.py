"""What `rlpretrain` runs for a config: one job per kind of run, chosen from `method.name`.

    rl            placement (launcher=local | ray), then the loop: every RL method (rlp, azr, yours)
    rpt           RPT's format warm-up, then the rl job, then its next-token-accuracy evaluation
    ntp           next-token training (TPT's trainer, the continued-pretraining baseline)
    tpt_generate  offline thinking generation for documents
    tpt_pipeline  tpt_generate, then ntp with and without the thinking, compared
    eval          a model or checkpoint on an evaluation suite (conf/eval/): samples.jsonl, results.json

Every job honours `launcher`: the learner and the engine it asks for come from the launcher's placer.
"""

from __future__ import annotations

from rlpretrain.jobs.eval import run_eval
from rlpretrain.jobs.ntp import run_ntp
from rlpretrain.jobs.rl import run_rl
from rlpretrain.jobs.rpt import run_rpt
from rlpretrain.jobs.tpt import run_tpt_generate, run_tpt_pipeline
from rlpretrain.run import open_run

JOBS = {"rl": run_rl, "rpt": run_rpt, "ntp": run_ntp, "tpt_generate": run_tpt_generate, "tpt_pipeline": run_tpt_pipeline,
        "eval": run_eval}
# the methods that are not plain RL name their job; every other method (registered in METHODS) is rl
METHOD_JOBS = {"rpt": "rpt", "ntp": "ntp", "tpt_generate": "tpt_generate", "tpt_pipeline": "tpt_pipeline"}


def job_name(method_name: str) -> str:
    return METHOD_JOBS.get(method_name, "rl")


def run(cfg):
    """Run the job for `cfg` (`job=NAME`, or the method's job); returns the rl job's RunSummary, or
    None for jobs that print their own."""
    name = cfg.job or job_name(cfg.method.name)
    if name not in JOBS:
        raise ValueError(f"unknown job '{name}'; available: {', '.join(sorted(JOBS))}")
    cfg = open_run(cfg)  # the run directory's record: a fresh run never overwrites one; resume=auto restores it
    return JOBS[name](cfg)
