"""AZR's rewards (Eqs. 4-6) and TRR++ against independent computations."""

import statistics

import pytest
import torch

from rlpretrain.algorithms.advantages import ADVANTAGE_ESTIMATORS
from rlpretrain.methods.azr.rewards import composite, learnability, proposer_reward, solve_reward, solver_reward
from rlpretrain.methods.azr.tasks import ROLES, TASK_TYPES, role_id


@pytest.mark.parametrize("successes, expected", [
    ([True] * 8, 0.0), ([False] * 8, 0.0),  # too easy / too hard: nothing to learn
    ([True] + [False] * 7, 7 / 8), ([True] * 6 + [False] * 2, 2 / 8), ([True, False], 0.5),
])
def test_learnability(successes, expected):
    assert learnability(successes) == pytest.approx(expected)


def test_learnability_needs_rollouts():
    with pytest.raises(ValueError, match="at least one solver rollout"):
        learnability([])


def test_composite_and_roles():
    assert solver_reward(True) == 1.0 and solver_reward(False) == 0.0
    assert composite(0.25, well_formed=True, passable=True) == 0.25
    assert composite(0.25, well_formed=True, passable=False) == -0.5
    assert composite(0.25, well_formed=False, passable=False) == -1.0
    assert [solve_reward(True, True), solve_reward(True, False), solve_reward(False, False)] == [1.0, -0.5, -1.0]


def test_proposer_reward_paper_and_official_zero():
    third = [True, False, False]
    assert proposer_reward(True, True, third) == pytest.approx(2 / 3)
    assert proposer_reward(True, True, [True] * 3) == 0.0  # the paper: a valid task nobody learns from gets 0
    assert proposer_reward(True, True, [True] * 3, zero_reward="official") == -0.5  # the official code's remap
    assert proposer_reward(True, True, [False] * 3, zero_reward="official") == -0.5
    assert proposer_reward(True, True, third, zero_reward="official") == pytest.approx(2 / 3)
    assert proposer_reward(True, False, []) == -0.5 and proposer_reward(False, False, []) == -1.0
    with pytest.raises(ValueError, match="zero_reward must be one of"):
        proposer_reward(True, True, third, zero_reward="verl")


def test_trr_pp_whitens_each_task_type_and_role_separately():
    gen = torch.Generator().manual_seed(0)
    samples = [(t, r) for t in TASK_TYPES for r in ROLES for _ in range(5)]
    rewards = torch.randn(len(samples), generator=gen).tolist()
    order = torch.randperm(len(samples), generator=gen).tolist()  # groups interleaved, as in a batch
    samples, rewards = [samples[i] for i in order], [rewards[i] for i in order]
    adv = ADVANTAGE_ESTIMATORS.get("trr_pp")(torch.tensor(rewards), torch.arange(len(samples)),
                                             torch.tensor([role_id(t, r) for t, r in samples]), eps=0.0)
    for i, key in enumerate(samples):  # (r - mean) / std over the samples of the same (task type, role)
        mine = [rw for s, rw in zip(samples, rewards) if s == key]
        assert adv[i].item() == pytest.approx((rewards[i] - statistics.fmean(mine)) / statistics.stdev(mine), rel=1e-5)


def test_trr_pp_token_weighted_option():
    """algorithm.adv_weighting=token: each completion token counts once in its (task type, role) group."""
    samples = [("deduction", "solve")] * 3 + [("induction", "propose")] * 2
    rewards, lengths = [1.0, -0.5, -1.0, 0.25, -0.5], [2, 5, 1, 3, 4]
    adv = ADVANTAGE_ESTIMATORS.get("trr_pp")(torch.tensor(rewards), torch.arange(5),
                                             torch.tensor([role_id(t, r) for t, r in samples]),
                                             torch.tensor(lengths), eps=0.0, weighting="token")
    for i, key in enumerate(samples):
        expanded = [rw for s, rw, n in zip(samples, rewards, lengths) if s == key for _ in range(n)]  # L copies
        assert adv[i].item() == pytest.approx((rewards[i] - statistics.fmean(expanded)) / statistics.stdev(expanded),
                                              rel=1e-5)


def test_token_weighting_counts_sampled_tokens_only():
    """With a completion mask (the scaffold's fences), token weighting counts the tokens the policy sampled."""
    from rlpretrain.algorithms.update import group_advantages
    from rlpretrain.rollout.batch import RolloutBatch

    samples = [("deduction", "propose")] * 3
    rewards, sampled = [1.0, -0.5, -1.0], [[1, 1, 0, 0, 1], [1], [1, 0, 0, 0, 1, 1]]
    batch = RolloutBatch(prompt_ids=[[1]] * 3, completion_ids=[[7] * len(m) for m in sampled],
                         sampling_logprobs=[[0.0] * len(m) for m in sampled], finish_reasons=["stop"] * 3,
                         rewards=rewards, group=[0, 1, 2], policy_version=0,
                         role=[role_id(t, r) for t, r in samples], completion_mask=sampled)
    adv = group_advantages(batch, "trr_pp", "token")
    expanded = [rw for rw, m in zip(rewards, sampled) for _ in range(sum(m))]  # 3, 1 and 3 sampled tokens
    mean, std = statistics.fmean(expanded), statistics.stdev(expanded)
    assert adv == pytest.approx([(rw - mean) / std for rw in rewards], rel=1e-4)
