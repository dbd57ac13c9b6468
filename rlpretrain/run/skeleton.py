"""One training run in its directory: what the RL loop and the next-token trainer share.

    run = Run(cfg, run_dir, desc)                 # the directory, its record (if absent), the seed
    start = run.resume(tokenizer, learner, state)  # the checkpoint to continue from, or version 0
    for step in run.steps(total):                  # from `start`, with a progress bar
        ... run.log(step + 1, metrics, timings)
        run.end_step(step + 1)                     # a checkpoint every `checkpoint.every` steps and at the end
    run.close()

`state` is anything with state_dict / load_state_dict / save_models / load_models (a Method).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import OmegaConf

from rlpretrain.checkpoint import list_checkpoints, load_checkpoint, resolve_resume, save_checkpoint
from rlpretrain.run.record import RECORD, write_record
from rlpretrain.seeding import seed_everything
from rlpretrain.tracking import Tracker

log = logging.getLogger(__name__)


class Run:
    def __init__(self, cfg, run_dir: str | Path | None = None, desc: str = "", record: dict | None = None):
        """`record`: the config to write into run.yaml when the directory has none (default: cfg, resolved)."""
        self.cfg = cfg
        self.dir = Path(run_dir or cfg.run_dir)
        self.desc = desc or cfg.experiment_name
        self.started = time.time()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = record if record is not None else OmegaConf.to_container(cfg, resolve=True)
        if not (self.dir / RECORD).exists():  # the entry point (rlpretrain.run.open_run) usually wrote it
            write_record(self.dir, self.config)
        seed_everything(cfg.seed)
        self.start = 0
        self.tracker: Tracker | None = None
        self._saved = None

    @property
    def ckpt_root(self) -> Path:
        return self.dir / "checkpoints"

    def resume(self, tokenizer, learner, state, update=None, save_initial: bool = False) -> int:
        """Load cfg.resume's checkpoint (if any) and open the metrics from there; returns the first step.
        save_initial: a fresh run's version-0 checkpoint (the reference its dumps are re-scored against)."""
        cfg = self.cfg
        self._saved = (tokenizer, learner, state, update)
        resume_from = resolve_resume(self.ckpt_root, cfg.resume)
        self.start = load_checkpoint(resume_from, learner, state, update) if resume_from else 0
        if resume_from:
            log.info("resumed from %s at step %d", resume_from, self.start)
        elif save_initial and not list_checkpoints(self.ckpt_root):
            self._save(0)
        self.tracker = Tracker(self.dir, cfg.tracking, self.config, resume_from_step=self.start)
        return self.start

    def steps(self, total: int):
        """Step indices from the resume point to `total`, with the progress bar (`self.bar`)."""
        from tqdm import tqdm

        self.total = total
        self.bar = tqdm(range(self.start, total), initial=self.start, total=total, desc=self.desc, unit="step",
                        dynamic_ncols=True, disable=not self.cfg.tracking.progress)
        try:
            yield from self.bar
        finally:
            self.bar.close()

    def log(self, step: int, metrics: dict, timings: dict, **postfix) -> None:
        self.tracker.log(step, metrics, timings)
        if postfix:
            self.bar.set_postfix(**postfix)

    def end_step(self, step: int) -> None:
        every = self.cfg.checkpoint.every
        if (every and step % every == 0) or step == self.total:
            self._save(step, self.cfg.checkpoint.keep_last)

    def _save(self, step: int, keep_last: int = 0) -> None:
        tokenizer, learner, state, update = self._saved
        c = self.cfg.checkpoint
        save_checkpoint(self.ckpt_root, step, tokenizer, learner, state, update, keep_last,
                        dtype=c.dtype, optimizer=c.optimizer)

    @property
    def seconds(self) -> float:
        return time.time() - self.started

    def close(self) -> None:
        if self.tracker is not None:
            self.tracker.close()
