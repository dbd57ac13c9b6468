"""The rl job: the learner and the engine placed by the launcher, then the generator-trainer loop
(with the `eval` suite every `trainer.eval_every` steps, through the same engine)."""

from __future__ import annotations

from pathlib import Path

import rlpretrain.methods  # noqa: F401  (registers the methods)
from rlpretrain.jobs.launching import launched
from rlpretrain.loop import RunSummary, train
from rlpretrain.methods.base import METHODS


def in_training_evaluation(cfg):
    """evaluate(engine, tokenizer, step) -> {"eval/<benchmark>/<metric>": value}; each evaluation
    writes its samples and results under RUN_DIR/eval/step_N (resumable like the eval job's)."""
    from rlpretrain.eval.suite import evaluate_suite
    from rlpretrain.jobs.eval import typed_suite

    suite = typed_suite(cfg)

    def evaluate(engine, tokenizer, step: int) -> dict[str, float]:
        results = evaluate_suite(suite, engine, tokenizer, Path(cfg.run_dir) / "eval" / f"step_{step:06d}",
                                 {"step": step, "model": {"name_or_path": cfg.model.name_or_path}}, seed=cfg.seed,
                                 progress=False)
        flat = {f"eval/{label}/{key}": value for label, metrics in results["benchmarks"].items()
                for key, value in metrics.items() if "@" in key}
        return {**flat, **{f"eval/{name}": value for name, value in results["aggregates"].items()}}

    return evaluate


def rl_body(cfg, placer) -> RunSummary:
    return train(cfg, placer.place, in_training_evaluation(cfg) if cfg.trainer.eval_every else None)


def run_rl(cfg) -> RunSummary:
    METHODS.get(cfg.method.name)  # a typo fails before Ray or a model starts
    if cfg.trainer.eval_every:
        from rlpretrain.eval.suite import check_suite
        from rlpretrain.jobs.eval import typed_suite
        check_suite(typed_suite(cfg))  # trainer.eval_every needs a suite: eval=NAME
    return launched(cfg, rl_body)
