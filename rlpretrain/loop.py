"""The generator–trainer loop. Every RL method runs through `train`.

    prompts ─► engine.generate ─► method scores (rewards) ─► advantages + policy loss
            ─► learner steps (after each: method.on_optimizer_step, e.g. EMA) ─► weight sync ─► log / dump / checkpoint
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import rlpretrain.methods  # noqa: F401  (registers the methods)
from rlpretrain.rewards import reward_means
from rlpretrain.algorithms.update import PolicyUpdate
from rlpretrain.dumps import dump_rollouts
from rlpretrain.launch.local import place_local
from rlpretrain.learner.lora import apply_lora
from rlpretrain.methods.base import METHODS, MethodContext
from rlpretrain.methods.thoughts import length_limit_warning
from rlpretrain.models.loading import load_model_and_tokenizer, pick_device
from rlpretrain.run import Run
from rlpretrain.run.summary import Change, fifths
from rlpretrain.tracking import read_metrics

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    run_dir: Path
    steps: int
    wall_seconds: float
    reward: Change  # reward_mean: first and last fifths of the steps, and the standard error of the change
    warnings: list[str] = field(default_factory=list)


def train(cfg, place=None, evaluate=None) -> RunSummary:
    """`place(cfg, policy, tokenizer) -> Placement` puts the learner and the engine somewhere
    (rlpretrain/launch/); default: both in this process. `evaluate(engine, tokenizer, step) -> metrics`
    (the rl job's, with trainer.eval_every) runs on the synced engine; its metrics are logged as eval/*."""
    run = Run(cfg)  # the run directory, its record, the seed
    device = pick_device(cfg.device)

    tokenizer, policy = load_model_and_tokenizer(cfg.model, device)
    policy = apply_lora(policy, cfg.learner.lora)  # r=0: unchanged
    placed = (place or place_local)(cfg, policy, tokenizer)
    learner, engine = placed.learner, placed.engine
    method = METHODS.get(cfg.method.name)(cfg, MethodContext(tokenizer, learner, cfg.learner.max_tokens_per_micro_batch))
    update = PolicyUpdate(cfg.algorithm, learner, tokenizer.pad_token_id, cfg.rollout.temperature,
                          cfg.trainer.max_steps, on_optimizer_step=method.on_optimizer_step)

    run.resume(tokenizer, learner, method, update, save_initial=True)  # version 0: the initial weights
    try:
        method.prepare(engine)
        for step in run.steps(cfg.trainer.max_steps):
            t0 = time.perf_counter()
            batch = method.rollout(step, engine)
            t1 = time.perf_counter()
            stats = update(batch)
            sync = placed.transport.sync(learner, engine)
            t2 = time.perf_counter()

            tokens = sum(len(p) + len(c) for p, c in zip(batch.prompt_ids, batch.completion_ids))
            metrics = {
                "reward_mean": statistics.fmean(batch.rewards), "reward_std": statistics.pstdev(batch.rewards),
                **reward_means(batch.columns), **method.metrics(batch), **batch.stats, **stats,
                "policy_version": learner.version, "tokens": tokens,
            }
            timings = {**batch.timings, "time/rollout": t1 - t0, "time/update": t2 - t1, "time/sync": sync.seconds,
                       "sync_bytes": sync.bytes, "time/step": t2 - t0, "tokens_per_s": tokens / (t2 - t0)}
            if evaluate is not None and cfg.trainer.eval_every and (
                    (step + 1) % cfg.trainer.eval_every == 0 or step + 1 == cfg.trainer.max_steps):
                t3 = time.perf_counter()
                metrics.update(evaluate(engine, tokenizer, step + 1))  # after the sync: the current weights
                timings["time/eval"] = time.perf_counter() - t3
            run.log(step + 1, metrics, timings, reward=f"{metrics['reward_mean']:+.3f}",
                    loss=f"{stats.get('pg_loss', 0.0):+.3f}", tok_s=f"{timings['tokens_per_s']:.0f}")
            if cfg.dump_rollouts:
                dump_rollouts(run.dir, step + 1, batch)
            run.end_step(step + 1)  # a checkpoint every checkpoint.every steps and at the end
    finally:
        method.close()
        run.close()
    return summarize(run.dir, run.seconds)


def summarize(run_dir: Path, wall_seconds: float) -> RunSummary:
    rows = read_metrics(run_dir)
    rewards = [m["reward_mean"] for m in rows]
    truncated = length_limit_warning([m["thought_truncated_frac"] for m in rows if "thought_truncated_frac" in m])
    return RunSummary(run_dir=run_dir, steps=len(rewards), wall_seconds=wall_seconds, reward=fifths(rewards),
                      warnings=[truncated] if truncated else [])
