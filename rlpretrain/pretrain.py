"""Next-token training on packed blocks, reusing the learner and the next-token objective.

Used to warm up the embedded model; the TPT and continued-pretraining paths build on it.
"""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Callable

import torch

from rlpretrain.algorithms.objectives import NextTokenObjective
from rlpretrain.learner.torch import TorchLearner


def next_token_warmup(model, blocks: list[list[int]], steps: int, batch_size: int, lr: float,
                      on_step: Callable[[float], None] | None = None, seed: int = 0) -> list[float]:
    cfg = SimpleNamespace(lr=lr, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.01, lr_schedule="cosine",
                          warmup_steps=max(1, steps // 20), min_lr_ratio=0.1, grad_clip=1.0,
                          max_tokens_per_micro_batch=1 << 30, micro_batch_min_fill=0.0, precision="fp32")
    learner = TorchLearner(cfg, model, total_steps=steps)
    objective = NextTokenObjective()
    rng = random.Random(seed)
    losses = []
    for _ in range(steps):
        rows = torch.tensor(rng.sample(blocks, min(batch_size, len(blocks))))
        batch = {"input_ids": rows, "attention_mask": torch.ones_like(rows), "loss_mask": torch.ones_like(rows)}
        losses.append(learner.train_step(batch, objective)["ntp_loss"])
        if on_step:
            on_step(losses[-1])
    return losses
