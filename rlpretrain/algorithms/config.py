"""The `algorithm` group's schema: advantage estimator, policy loss, KL, PPO epochs, rollout correction, critic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from rlpretrain.checks import require


@dataclass
class AlgorithmConfig:
    adv_estimator: str = "rloo"
    adv_weighting: str = "sample"  # group mean/std over samples | token: over completion tokens (not rloo, gae)
    policy_loss: str = "ppo_clip"
    clip_low: float = 0.2
    clip_high: float = 0.2
    loss_agg: str = "seq_mean_token_mean"
    loss_norm_const: Optional[float] = None  # for seq_mean_token_sum_norm
    kl_coef: float = 0.0
    kl_estimator: str = "k3"
    entropy_coef: float = 0.0
    ppo_epochs: int = 1
    mini_batches: int = 1  # optimizer steps per epoch over one rollout batch
    # engine-learner mismatch (rlpretrain/algorithms/rollout_correction.py): none | tis (truncated) | mis (masked)
    rollout_correction: str = "none"
    rollout_correction_cap: float = 2.0  # C > 1: TIS weights are min(ratio, C); MIS drops ratios above C
    rollout_correction_level: str = "token"  # token | sequence (one ratio per sequence: the product of its tokens')
    # PPO with a learned critic (adv_estimator=gae)
    critic: str = "separate"  # separate: a copy of the policy with a value head | value_head: a head on the policy's hidden states
    gamma: float = 1.0
    lam: float = 0.95
    value_clip: Optional[float] = 0.2
    critic_lr: float = 1e-5

    def __post_init__(self):
        require(self.clip_low >= 0, "clip_low", ">= 0", self.clip_low)
        require(self.clip_high >= 0, "clip_high", ">= 0", self.clip_high)
        require(self.kl_coef >= 0, "kl_coef", ">= 0", self.kl_coef)
        require(self.ppo_epochs >= 1, "ppo_epochs", ">= 1", self.ppo_epochs)
        require(self.mini_batches >= 1, "mini_batches", ">= 1", self.mini_batches)
        require(0 <= self.gamma <= 1, "gamma", "in [0, 1]", self.gamma)
        require(0 <= self.lam <= 1, "lam", "in [0, 1]", self.lam)
