"""Plain-torch learner: AdamW, LR schedule, grad clipping, token-budget micro-batching, fp32/bf16."""

from __future__ import annotations

import contextlib

import torch

from rlpretrain.learner.base import LEARNERS, Learner, Loss, TensorBatch
from rlpretrain.learner.efficiency import apply_efficiency_options
from rlpretrain.learner.microbatch import split_by_tokens
from rlpretrain.learner.schedules import optimizer_and_schedule
from rlpretrain.models.device import to_device
from rlpretrain.models.forward_options import forward_options


@LEARNERS.register("torch")
class TorchLearner(Learner):
    def __init__(self, cfg, module: torch.nn.Module, total_steps: int):
        if cfg.precision not in ("fp32", "bf16"):
            raise ValueError(f"learner.precision must be fp32 or bf16, got '{cfg.precision}'")
        apply_efficiency_options(cfg, module)
        self.cfg = cfg
        self.module = module
        self.version = 0
        params = [p for p in module.parameters() if p.requires_grad]
        self.optimizer, self.scheduler = optimizer_and_schedule(cfg, params, total_steps)

    def _autocast(self):
        if self.cfg.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self, batch: TensorBatch, loss: Loss) -> dict[str, float]:
        self.module.train()
        micro_batches = split_by_tokens(batch, self.cfg.max_tokens_per_micro_batch, self.cfg.micro_batch_min_fill,
                                        packed=forward_options(self.module).padding_free)
        total = sum(loss.denominator(m) for m in micro_batches)
        stats: dict[str, float] = {}
        if total > 0:
            for micro in micro_batches:
                share = loss.denominator(micro) / total
                with self._autocast():
                    numerator, micro_stats = loss.numerator(self.module, to_device(micro, self.device))
                (numerator / total).backward()
                for key, value in micro_stats.items():
                    stats[key] = stats.get(key, 0.0) + share * float(value)
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.module.parameters(), self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        )
        stats["lr"] = self.scheduler.get_last_lr()[0]
        stats["grad_norm"] = float(grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.version += 1
        stats["micro_batches"] = len(micro_batches)
        return stats

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "version": self.version}

    def load_state_dict(self, state: dict) -> None:
        if "optimizer" in state:  # absent when saved with checkpoint.optimizer=false: Adam restarts
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.version = state["version"]
