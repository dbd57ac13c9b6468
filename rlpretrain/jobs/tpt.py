"""The TPT jobs: thinking generation (its engine placed by the launcher) and the whole pipeline."""

from __future__ import annotations

from rlpretrain.jobs.launching import launched, single_learner_only
from rlpretrain.methods.tpt.generate import format_summary, generate_thinking
from rlpretrain.methods.tpt.pipeline import caveat, run_pipeline


def generate_body(cfg, placer) -> dict:
    return generate_thinking(cfg, placer=placer)


def run_tpt_generate(cfg) -> None:
    print(format_summary(launched(cfg, generate_body)))


def run_tpt_pipeline(cfg) -> None:
    single_learner_only(cfg, "tpt_pipeline")
    comparison = launched(cfg, run_pipeline)
    arms = comparison["arms"]
    print(f"\n{cfg.experiment_name}: held-out next-token loss on original documents, equal token budgets")
    for arm, s in arms.items():
        print(f"  {arm:8s} {s['eval_loss_last']:.4f}   ({s['tokens_trained']} tokens trained, "
              f"{s['doc_tokens_seen']} of them document tokens)")
    if {"vanilla", "tpt"} <= set(arms):
        diff = arms["tpt"]["eval_loss_last"] - arms["vanilla"]["eval_loss_last"]
        print(f"  tpt - vanilla: {diff:+.4f} ({'TPT lower' if diff < 0 else 'TPT not lower'})")
        if "shuffled" in arms:
            control = arms["tpt"]["eval_loss_last"] - arms["shuffled"]["eval_loss_last"]
            print(f"  tpt - shuffled: {control:+.4f} (what the thoughts' content adds over the same thinking tokens)")
        print(caveat(comparison["thoughts"], control="shuffled" in arms))
    print(f"  run dir: {cfg.run_dir}")
