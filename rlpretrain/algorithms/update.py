"""From a scored RolloutBatch to optimizer steps: advantages, then the policy loss.

`ppo_epochs` x `mini_batches` optimizer steps per rollout batch. With one of each the update is
exactly on-policy and π_old is the current policy (no extra forward pass); otherwise π_old's
log-probs are recomputed once, before the first step.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch

from rlpretrain.algorithms.advantages import ADVANTAGE_ESTIMATORS, check_weighting
from rlpretrain.algorithms.objectives import PolicyGradientObjective, token_stats
from rlpretrain.algorithms.rollout_correction import check_config, mismatch_and_weights, require_sampling_logprobs
from rlpretrain.learner.base import Learner, TensorBatch
from rlpretrain.models.device import module_device, to_device
from rlpretrain.models.ema import EMATeacher
from rlpretrain.models.forward_options import forward_options, set_forward_options
from rlpretrain.rollout.batch import RolloutBatch


def group_advantages(batch: RolloutBatch, estimator: str, weighting: str = "sample") -> list[float]:
    fn = ADVANTAGE_ESTIMATORS.get(estimator)
    rewards = torch.tensor(batch.rewards, dtype=torch.float32)
    group = torch.tensor(batch.group, dtype=torch.long)
    role = torch.tensor(batch.role, dtype=torch.long) if batch.role is not None else None
    lengths = torch.tensor(batch.trained_lengths(), dtype=torch.long)
    return fn(rewards, group, role, lengths, weighting=weighting).tolist()


@torch.no_grad()
def sequence_logprobs(module, tensors: TensorBatch, temperature: float, max_tokens: int) -> torch.Tensor:
    """Teacher-forced log-probs of every token (column 0 is 0), in row chunks that fit the budget.
    Runs on the module's device; returns [N, L] on the CPU, beside the batch it was given."""
    from rlpretrain.learner.microbatch import split_by_tokens

    out = torch.zeros(tensors["input_ids"].shape, dtype=torch.float32)
    rows = {"row": torch.arange(len(out)), "input_ids": tensors["input_ids"], "attention_mask": tensors["attention_mask"]}
    device = module_device(module)
    for micro in split_by_tokens(rows, max_tokens, packed=forward_options(module).padding_free):
        logp = token_stats(module, to_device(micro, device), temperature)[0]
        out[micro["row"], 1:micro["input_ids"].shape[1]] = logp.cpu()
    return out


def frozen_copy(learner: Learner) -> torch.nn.Module:
    """The learner's current policy as a plain model on its device, never updated: the KL reference.
    Built from whole weights (`named_weights`: ZeRO-3 gathered, LoRA merged), as the EMA teacher is,
    so no sharding hook or adapter of the learner comes along."""
    teacher = EMATeacher(decay=1.0)
    teacher.init_from(learner.module.config, learner.named_weights())
    # the learner's chunked / packed log-prob path too (its layers are not compiled: no cache caveat)
    set_forward_options(teacher.module, replace(forward_options(learner.module), compiled=False))
    return teacher.module


class PolicyUpdate:
    def __init__(self, cfg, learner: Learner, pad_id: int, temperature: float, total_steps: int,
                 on_optimizer_step: Callable[[], None] = lambda: None):
        self.cfg = cfg
        self.on_optimizer_step = on_optimizer_step  # e.g. RLP's EMA teacher follows every step
        self.learner = learner
        self.pad_id = pad_id
        self.temperature = temperature
        check_config(cfg)
        self.objective = PolicyGradientObjective(cfg, temperature)
        self.critic = None
        if cfg.adv_estimator == "gae":
            if cfg.adv_weighting != "sample":
                raise ValueError(f"algorithm.adv_weighting={cfg.adv_weighting} applies to the group estimators, "
                                 "not to adv_estimator=gae (its advantages are per token already)")
            from rlpretrain.algorithms.critic_update import Critic
            self.critic = Critic(cfg, learner.module, learner.cfg, total_steps)
        else:
            check_weighting(cfg.adv_estimator, cfg.adv_weighting)  # fail early on a typo or an unsupported weighting
        # KL is measured against the initial policy, frozen
        self.reference = frozen_copy(learner) if cfg.kl_coef > 0 else None

    def state_dict(self) -> dict:
        return self.critic.state_dict() if self.critic is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.critic is not None:
            self.critic.load_state_dict(state)

    def __call__(self, batch: RolloutBatch) -> dict[str, float]:
        cfg = self.cfg
        if batch.temperature is not None and batch.temperature != self.temperature:
            # π_old's log-probs (the engine's, or recomputed) and π_θ's must be at one temperature
            raise ValueError(f"the batch was sampled at temperature {batch.temperature} but the update computes "
                             f"log-probs at {self.temperature}: the importance ratio would be biased; sample at "
                             "rollout.temperature")
        if self.critic is None:
            batch.advantages = group_advantages(batch, cfg.adv_estimator, cfg.adv_weighting)
            tensors = batch.to_tensors(self.pad_id)
        else:
            tensors = batch.to_tensors(self.pad_id)
            self.critic.advantages(tensors, torch.tensor(batch.rewards, dtype=torch.float32))
            # per-sequence summary for dumps: the advantage of the first completion token
            first = tensors["loss_mask"].argmax(dim=1)
            batch.advantages = tensors["advantages"][torch.arange(len(batch)), first].tolist()
        budget = self.learner.cfg.max_tokens_per_micro_batch
        if self.reference is not None:
            tensors["ref_logprobs"] = sequence_logprobs(self.reference, tensors, self.temperature, budget)
        if cfg.ppo_epochs * cfg.mini_batches > 1:
            tensors["old_logprobs"] = sequence_logprobs(self.learner.module, tensors, self.temperature, budget)
        mismatch: dict[str, float] = {}
        # on-policy the objective measures the mismatch from its own forward; otherwise π_old is known here
        if require_sampling_logprobs(cfg, tensors) and "old_logprobs" in tensors:
            mismatch = mismatch_and_weights(cfg, tensors, tensors["old_logprobs"])
        stats: dict[str, float] = {}
        n = len(batch)
        for epoch in range(cfg.ppo_epochs):
            seed = self.learner.version * 1009 + epoch  # a different, reproducible shuffle every time
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if cfg.mini_batches > 1 else torch.arange(n)
            for chunk in order.chunk(cfg.mini_batches):
                part = {k: v[chunk] for k, v in tensors.items()}
                stats = self.learner.train_step(part, self.objective)
                self.on_optimizer_step()
                if self.critic is not None:
                    stats.update(self.critic.train_step(part))
        return {**stats, **mismatch}
