"""RL algorithms as plain tensor functions: advantage estimators, policy losses, aggregation, KL, critics.

`objectives.py` and `update.py` (not re-exported here) put these into the learner's form.
"""

from rlpretrain.algorithms.advantages import (
    ADVANTAGE_ESTIMATORS,
    dr_grpo,
    grpo,
    register_adv_est,
    reinforce_pp,
    rloo,
    trr_pp,
)
from rlpretrain.algorithms.critic import PolicyValueHead, ValueHead, ValueModel, gae, value_loss
from rlpretrain.algorithms.losses import (
    KL_ESTIMATORS,
    LOSS_AGG_MODES,
    POLICY_LOSSES,
    PolicyLossConfig,
    agg_denominator,
    agg_numerator,
    aggregate,
    entropy_from_logits,
    gspo,
    kl_penalty,
    next_token_loss,
    ppo_clip,
    register_policy_loss,
    token_logprobs,
)

__all__ = [
    "ADVANTAGE_ESTIMATORS", "register_adv_est", "rloo", "grpo", "dr_grpo", "reinforce_pp", "trr_pp",
    "token_logprobs", "entropy_from_logits", "next_token_loss",
    "LOSS_AGG_MODES", "agg_numerator", "agg_denominator", "aggregate",
    "KL_ESTIMATORS", "kl_penalty", "POLICY_LOSSES", "PolicyLossConfig", "register_policy_loss", "ppo_clip", "gspo",
    "gae", "value_loss", "ValueHead", "PolicyValueHead", "ValueModel",
]
