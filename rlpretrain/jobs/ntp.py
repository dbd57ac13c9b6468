"""The ntp job: next-token training (TPT's trainer; with thinking off, the continued-pretraining baseline)."""

from __future__ import annotations

from rlpretrain.jobs.launching import launched, single_learner_only
from rlpretrain.methods.tpt.ntp import format_summary, train_ntp


def ntp_body(cfg, placer) -> dict:
    return train_ntp(cfg, placer=placer)


def run_ntp(cfg) -> None:
    single_learner_only(cfg, "ntp")
    summary = launched(cfg, ntp_body, rollout_workers=False)
    print("\n" + format_summary(cfg.experiment_name, summary))
