"""AZR's rewards (arXiv 2505.03335, §3.3, Eqs. 4-6).

- proposer learnability (Eq. 4): over n solver rollouts on the proposed task, with success rate
  s, r = 1 - s, and 0 when s is 0 or 1 (too hard or too easy teaches nothing);
- solver (Eq. 5): 1 when the answer is right, else 0;
- format-aware composite (Eq. 6): the role reward when the response is passable (a valid task /
  a right answer), -0.5 when well formed but wrong (an invalid task / a wrong answer), -1 on a
  format error.

`zero_reward="official"` reproduces the official code, which turns a valid proposal's learnability
of 0 into -0.5 as well (reward_managers.py; its issue #37 asks about the difference); "paper" keeps 0.
"""

from __future__ import annotations

ZERO_REWARD_MODES = ("paper", "official")


def learnability(successes: list[bool]) -> float:
    if not successes:
        raise ValueError("learnability needs at least one solver rollout")
    rate = sum(successes) / len(successes)
    return 0.0 if rate in (0.0, 1.0) else 1.0 - rate


def solver_reward(right: bool) -> float:
    return 1.0 if right else 0.0


def composite(role_reward: float, well_formed: bool, passable: bool) -> float:
    if not well_formed:
        return -1.0
    return role_reward if passable else -0.5


def proposer_reward(well_formed: bool, valid: bool, successes: list[bool], zero_reward: str = "paper") -> float:
    if zero_reward not in ZERO_REWARD_MODES:
        raise ValueError(f"method.zero_reward must be one of {list(ZERO_REWARD_MODES)}, got '{zero_reward}'")
    r = learnability(successes) if valid else 0.0
    if valid and r == 0.0 and zero_reward == "official":
        return -0.5
    return composite(r, well_formed, valid)


def solve_reward(well_formed: bool, right: bool) -> float:
    return composite(solver_reward(right), well_formed, right)
