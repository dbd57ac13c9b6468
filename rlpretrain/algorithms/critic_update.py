"""PPO with a learned critic (algorithm.adv_estimator=gae): values, GAE advantages, value updates.

Two critics, chosen by `algorithm.critic`:
- `separate`: a copy of the policy with a value head (`ValueModel.from_policy`), trained on its own.
- `value_head`: a linear head on the policy's last hidden states. The trunk is the policy's and is
  not moved by the value loss (hidden states are detached); only the head is trained.

The reward is given at a sequence's last completion token; per-token advantages come from GAE.
Rows are in the learner's layout: `loss_mask[i, j] = 1` marks completion token j; the value of the
state before token j is read at position j − 1.
"""

from __future__ import annotations

import dataclasses

import torch
from omegaconf import OmegaConf

from rlpretrain.algorithms.critic import PolicyValueHead, ValueModel, gae, value_loss
from rlpretrain.algorithms.losses import agg_denominator, agg_numerator
from rlpretrain.learner.torch import TorchLearner
from rlpretrain.models.device import module_device, to_device


def build_critic(cfg, policy) -> torch.nn.Module:
    """On the policy's device (the value head is built on the CPU, the trunk copied where the policy is)."""
    if cfg.critic == "separate":
        critic = ValueModel.from_policy(policy)
    elif cfg.critic == "value_head":
        critic = PolicyValueHead(policy)
    else:
        raise ValueError(f"algorithm.critic must be 'separate' or 'value_head', got '{cfg.critic}'")
    return critic.to(module_device(policy))


class ValueObjective:
    def __init__(self, cfg):
        self.cfg = cfg

    def denominator(self, micro) -> float:
        return agg_denominator(micro["loss_mask"][:, 1:], "token_mean")

    def numerator(self, module, micro):
        mask = micro["loss_mask"][:, 1:]
        values = module(micro["input_ids"], micro["attention_mask"])[:, :-1]
        loss = value_loss(values, micro["old_values"][:, 1:], micro["returns"][:, 1:], mask, self.cfg.value_clip)
        return agg_numerator(loss, mask, "token_mean"), {"value_loss": float((loss.detach() * mask).sum() / mask.sum().clamp(min=1))}


class Critic:
    def __init__(self, cfg, policy, learner_cfg, total_steps: int):
        self.cfg = cfg
        self.module = build_critic(cfg, policy)
        typed = OmegaConf.to_object(learner_cfg) if OmegaConf.is_config(learner_cfg) else learner_cfg
        critic_cfg = dataclasses.replace(typed, lr=cfg.critic_lr)  # the policy's learner settings at the critic's lr
        self.learner = TorchLearner(critic_cfg, self.module, total_steps)
        self.objective = ValueObjective(cfg)

    @torch.no_grad()
    def advantages(self, tensors: dict[str, torch.Tensor], rewards: torch.Tensor) -> None:
        """Adds per-token `advantages`, `returns` and `old_values` ([N, L], column 0 unused) to `tensors`."""
        mask = tensors["loss_mask"][:, 1:]
        inputs = to_device({k: tensors[k] for k in ("input_ids", "attention_mask")}, module_device(self.module))
        values = self.module(**inputs)[:, :-1].float().cpu()  # GAE runs beside the batch, on the CPU
        last = (mask * torch.arange(mask.shape[1])).argmax(dim=1)  # index of each row's last completion token
        token_rewards = torch.zeros_like(mask)
        token_rewards[torch.arange(len(last)), last] = rewards
        adv, returns = gae(token_rewards, values * mask, mask, self.cfg.gamma, self.cfg.lam)
        pad = lambda x: torch.cat([torch.zeros_like(x[:, :1]), x], dim=1)
        tensors.update(advantages=pad(adv), returns=pad(returns), old_values=pad(values * mask))

    def state_dict(self) -> dict:
        return {"critic": self.module.state_dict(), "critic_learner": self.learner.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["critic"])
        self.learner.load_state_dict(state["critic_learner"])

    def train_step(self, tensors) -> dict[str, float]:
        keys = ("input_ids", "attention_mask", "loss_mask", "returns", "old_values")
        stats = self.learner.train_step({k: tensors[k] for k in keys}, self.objective)
        return {"critic/" + k: v for k, v in stats.items() if k in ("value_loss", "grad_norm")}

