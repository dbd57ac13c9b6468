"""Reward functions: the registry, and the rewards shipped with the toolkit.

Importing this package registers every built-in reward; user rewards load by dotted path.
"""

from .registry import (REWARDS, RewardError, WeightedReward, build_rewards, combine_rewards, load_reward,
                              register_reward, reward_means)
from . import info_gain  # noqa: F401  (registers "info_gain")
from . import prefix_match  # noqa: F401  (registers "prefix_match", "first_token_match", "next_token_prob")

__all__ = ["REWARDS", "RewardError", "WeightedReward", "build_rewards", "combine_rewards", "load_reward",
           "register_reward", "reward_means"]
