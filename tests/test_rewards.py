"""Reward plug-ins: registry, dotted paths, weights, None, and the errors a user sees."""

import asyncio
import math
import sys
import types

import pytest

from rewards import RewardError, build_rewards, combine_rewards, load_reward
from rewards.info_gain import info_gain


def _spec(name, weight=1.0):
    return types.SimpleNamespace(name=name, weight=weight)


@pytest.fixture
def user_module(monkeypatch):
    mod = types.ModuleType("my_rewards")

    def length(prompts, completions, **_):
        return [float(len(c)) for c in completions]

    def only_even(prompts, completions, **_):
        return [1.0 if i % 2 == 0 else None for i in range(len(completions))]

    async def async_one(prompts, completions, **_):
        await asyncio.sleep(0)
        return [1.0] * len(completions)

    def picky(prompts, completions, **_):
        for c in completions:
            if c == "bad":
                raise ValueError("cannot score this")
        return [0.0] * len(completions)

    def nan(prompts, completions, **_):
        return [0.0, math.nan]

    for fn in (length, only_even, async_one, picky, nan):
        setattr(mod, fn.__name__, fn)
    monkeypatch.setitem(sys.modules, "my_rewards", mod)
    return mod


def test_registered_and_dotted_path(user_module):
    assert load_reward("info_gain") is info_gain
    assert load_reward("my_rewards.length") is user_module.length
    assert load_reward("my_rewards:length") is user_module.length


def test_weighted_sum_and_none_excludes(user_module):
    rewards = build_rewards([_spec("my_rewards.length", 0.5), _spec("my_rewards.only_even", 2.0)])
    totals, per_fn = combine_rewards(rewards, ["p"] * 3, ["ab", "abcd", "a"], {})
    # sample 1: only_even returns None, so only 0.5 * 4 counts
    assert totals == [0.5 * 2 + 2.0, 0.5 * 4, 0.5 * 1 + 2.0]
    assert per_fn["my_rewards.only_even"] == [1.0, None, 1.0]


def test_async_reward(user_module):
    totals, _ = combine_rewards(build_rewards([_spec("my_rewards.async_one")]), ["p", "q"], ["a", "b"], {})
    assert totals == [1.0, 1.0]


def test_raising_reward_names_function_and_sample(user_module):
    rewards = build_rewards([_spec("my_rewards.picky")])
    with pytest.raises(RewardError, match=r"'my_rewards.picky' raised ValueError: cannot score this on sample 2 "
                                          r"\(prompt='p2', completion='bad'\)"):
        combine_rewards(rewards, ["p0", "p1", "p2"], ["ok", "fine", "bad"], {})


def test_nan_is_an_error(user_module):
    with pytest.raises(RewardError, match=r"'my_rewards.nan' returned nan \(not a number\) on sample 1"):
        combine_rewards(build_rewards([_spec("my_rewards.nan")]), ["a", "b"], ["x", "y"], {})


def test_all_none_is_an_error(user_module):
    rewards = build_rewards([_spec("my_rewards.only_even")])
    with pytest.raises(RewardError, match="every reward function returned None for sample 1"):
        combine_rewards(rewards, ["a", "b"], ["x", "y"], {})


def test_unimportable_path():
    with pytest.raises(RewardError, match=r"reward 'no_such_pkg.fn': cannot import module 'no_such_pkg'"):
        load_reward("no_such_pkg.fn")
    with pytest.raises(RewardError, match=r"reward 'nonsense' is not registered \(available: .*info_gain"):
        load_reward("nonsense")
    with pytest.raises(RewardError, match="module 'math' has no callable 'nope'"):
        load_reward("math.nope")


def test_info_gain_is_difference():
    assert info_gain(["p"] * 2, ["c"] * 2, s_pred=[-0.5, -2.0], s_ema=[-1.0, -1.0]) == [0.5, -1.0]
