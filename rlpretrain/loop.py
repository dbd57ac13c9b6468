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

from omegaconf import OmegaConf
from tqdm import tqdm

import rlpretrain.methods  # noqa: F401  (registers the methods)
from rlpretrain.algorithms.update import PolicyUpdate
from rlpretrain.checkpoint import list_checkpoints, load_checkpoint, resolve_resume, save_checkpoint
from rlpretrain.dumps import dump_rollouts
from rlpretrain.launch.local import place_local
from rlpretrain.learner.lora import apply_lora
from rlpretrain.methods.base import METHODS, MethodContext
from rlpretrain.methods.thoughts import length_limit_warning
from rlpretrain.models.loading import load_model_and_tokenizer, pick_device
from rlpretrain.seeding import seed_everything
from rlpretrain.tracking import Tracker, read_metrics

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    run_dir: Path
    steps: int
    wall_seconds: float
    reward_first: float  # mean reward over the first fifth of the steps
    reward_last: float  # ... and over the last fifth
    warnings: list[str] = field(default_factory=list)

    @property
    def reward_rose(self) -> bool:
        return self.reward_last > self.reward_first


def train(cfg, place=None) -> RunSummary:
    """`place(cfg, policy, tokenizer) -> Placement` puts the learner and the engine somewhere
    (rlpretrain/launch/); default: both in this process."""
    started = time.time()
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)

    tokenizer, policy = load_model_and_tokenizer(cfg.model, device)
    policy = apply_lora(policy, cfg.learner.lora)  # r=0: unchanged
    placed = (place or place_local)(cfg, policy, tokenizer)
    learner, engine = placed.learner, placed.engine
    method = METHODS.get(cfg.method.name)(cfg, MethodContext(tokenizer, learner, cfg.learner.max_tokens_per_micro_batch))
    update = PolicyUpdate(cfg.algorithm, learner, tokenizer.pad_token_id, cfg.rollout.temperature,
                          cfg.trainer.max_steps, on_optimizer_step=method.on_optimizer_step)

    ckpt_root = run_dir / "checkpoints"
    resume_from = resolve_resume(ckpt_root, cfg.resume)
    start = load_checkpoint(resume_from, learner, method, update) if resume_from else 0
    if resume_from:
        log.info("resumed from %s at step %d", resume_from, start)
    elif not list_checkpoints(ckpt_root):
        save_checkpoint(ckpt_root, 0, tokenizer, learner, method, update,  # version 0: the initial weights
                        dtype=cfg.checkpoint.dtype, optimizer=cfg.checkpoint.optimizer)
    tracker = Tracker(run_dir, cfg.tracking, OmegaConf.to_container(cfg, resolve=True), resume_from_step=start)
    try:
        method.prepare(engine)
        bar = tqdm(range(start, cfg.trainer.max_steps), initial=start, total=cfg.trainer.max_steps,
                   desc=cfg.experiment_name, unit="step", dynamic_ncols=True, disable=not cfg.tracking.progress)
        for step in bar:
            t0 = time.perf_counter()
            batch = method.rollout(step, engine)
            t1 = time.perf_counter()
            stats = update(batch)
            sync = placed.transport.sync(learner, engine)
            t2 = time.perf_counter()

            tokens = sum(len(p) + len(c) for p, c in zip(batch.prompt_ids, batch.completion_ids))
            metrics = {
                "reward_mean": statistics.fmean(batch.rewards), "reward_std": statistics.pstdev(batch.rewards),
                **method.metrics(batch), **stats, "policy_version": learner.version, "tokens": tokens,
            }
            timings = {**batch.timings, "time/rollout": t1 - t0, "time/update": t2 - t1, "time/sync": sync.seconds,
                       "sync_bytes": sync.bytes, "time/step": t2 - t0, "tokens_per_s": tokens / (t2 - t0)}
            tracker.log(step + 1, metrics, timings)
            if cfg.dump_rollouts:
                dump_rollouts(run_dir, step + 1, batch)
            bar.set_postfix(reward=f"{metrics['reward_mean']:+.3f}", loss=f"{stats.get('pg_loss', 0.0):+.3f}",
                            tok_s=f"{timings['tokens_per_s']:.0f}")
            if (cfg.checkpoint.every and (step + 1) % cfg.checkpoint.every == 0) or step + 1 == cfg.trainer.max_steps:
                save_checkpoint(ckpt_root, step + 1, tokenizer, learner, method, update, cfg.checkpoint.keep_last,
                                dtype=cfg.checkpoint.dtype, optimizer=cfg.checkpoint.optimizer)
        bar.close()
    finally:
        method.close()
        tracker.close()
    return summarize(run_dir, time.time() - started)


def summarize(run_dir: Path, wall_seconds: float) -> RunSummary:
    rows = read_metrics(run_dir)
    rewards = [m["reward_mean"] for m in rows]
    fifth = max(1, len(rewards) // 5)
    truncated = length_limit_warning([m["thought_truncated_frac"] for m in rows if "thought_truncated_frac" in m])
    return RunSummary(run_dir=run_dir, steps=len(rewards), wall_seconds=wall_seconds,
                      reward_first=statistics.fmean(rewards[:fifth]) if rewards else float("nan"),
                      reward_last=statistics.fmean(rewards[-fifth:]) if rewards else float("nan"),
                      warnings=[truncated] if truncated else [])
