"""The next-token mini-trainer: a few hundred steps of the learner on sampled token rows.

Used by the embedded model's build (models/embedded.py, a warm-up on packed blocks) and by RPT's
format warm-up (methods/rpt_warmup.py, loss on the response only). It sits here, beside `update.py`
(the RL update that drives the learner), because it needs both the learner and the next-token
objective: methods import it downward. The embedded build is the one caller below it: a model
that is built by training needs the learner, so models/embedded.py imports this lazily, inside the
build (which runs once per cache key), and importing `rlpretrain.models` never loads the learner.
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

import torch

from rlpretrain.algorithms.objectives import NextTokenObjective
from rlpretrain.learner.config import LearnerConfig
from rlpretrain.learner.microbatch import pad_right
from rlpretrain.learner.torch import TorchLearner


def warmup_learner_config(lr: float, steps: int, weight_decay: float, **kw) -> LearnerConfig:
    """The warm-ups' optimizer: AdamW (0.9, 0.95), cosine to 10% after a 5% linear warm-up, clip 1, fp32."""
    return LearnerConfig(lr=lr, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=weight_decay, lr_schedule="cosine",
                         warmup_steps=max(1, steps // 20), min_lr_ratio=0.1, grad_clip=1.0, precision="fp32", **kw)


def train_next_token(model: torch.nn.Module, examples: Sequence[tuple[list[int], int]], learner_cfg: LearnerConfig,
                     steps: int, batch_size: int, pad_id: int, seed: int = 0,
                     on_step: Callable[[float], None] | None = None) -> list[float]:
    """`steps` optimizer steps on `model` in place; each batch is `batch_size` examples drawn without
    replacement (seeded). An example is (token ids, loss start): the loss is on ids[start:].
    Returns the next-token loss of every step."""
    learner = TorchLearner(learner_cfg, model, total_steps=steps)
    objective = NextTokenObjective()
    rng = random.Random(seed)
    losses = []
    for _ in range(steps):
        chosen = rng.sample(examples, min(batch_size, len(examples)))
        batch = {"input_ids": pad_right([ids for ids, _ in chosen], pad_id),  # the learner moves it to the model
                 "attention_mask": pad_right([[1] * len(ids) for ids, _ in chosen], 0),
                 "loss_mask": pad_right([[0] * s + [1] * (len(ids) - s) for ids, s in chosen], 0, dtype=torch.float32)}
        losses.append(learner.train_step(batch, objective)["ntp_loss"])
        if on_step:
            on_step(losses[-1])
    return losses
