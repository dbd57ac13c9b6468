"""Reward plug-ins: registry, dotted paths, weights, None, and the errors a user sees."""

import asyncio
import math
import sys
import types

import pytest

from rlpretrain.rewards import RewardError, build_rewards, combine_rewards, load_reward
from rlpretrain.rewards.info_gain import info_gain


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


# ---------------------------------------------------------------- TRL's calling convention

def test_numbers_of_any_kind_and_non_finite_refused(user_module):
    import numpy as np
    import torch

    user_module.mixed = lambda prompts, completions, **_: [np.float32(0.5), np.int64(2), torch.tensor(1.5), True]
    user_module.inf = lambda prompts, completions, **_: [0.0, float("-inf")]
    user_module.text = lambda prompts, completions, **_: ["0.5", 1.0]
    totals, _ = combine_rewards(build_rewards([_spec("my_rewards.mixed")]), ["p"] * 4, ["a"] * 4, {})
    assert totals == [0.5, 2.0, 1.5, 1.0] and all(type(t) is float for t in totals)
    with pytest.raises(RewardError) as e:
        combine_rewards(build_rewards([_spec("my_rewards.inf")]), ["a", "b"], ["x", "y"], {})
    assert str(e.value) == ("reward function 'my_rewards.inf' returned -inf (not a finite number) on sample 1 "
                            "(prompt='b', completion='y')")
    with pytest.raises(RewardError, match=r"'my_rewards.text' returned '0.5' \(not a number\) on sample 0"):
        combine_rewards(build_rewards([_spec("my_rewards.text")]), ["a", "b"], ["x", "y"], {})


def test_trl_shipped_rewards_get_what_trl_passes():
    from trl.rewards import get_repetition_penalty_reward, get_soft_overlong_punishment, think_format_reward

    specs = [types.SimpleNamespace(name="trl_rewards.repetition", weight=1.0),
             types.SimpleNamespace(name="trl_rewards.overlong", weight=1.0),
             types.SimpleNamespace(name="trl.rewards.think_format_reward", weight=1.0, conversational=True)]
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent / "plugins"))
    try:
        rewards = build_rewards(specs)
    finally:
        sys.path.pop(0)
    ids = [[1, 2, 3], [5, 5, 5, 5, 5, 5, 5], [7] * 12]
    texts = ["<think>a</think> b", "no think", "<think>x"]
    totals, per_fn = combine_rewards(rewards, ["p"] * 3, texts, {}, completion_ids=ids, step=4)
    assert per_fn["trl_rewards.repetition"] == get_repetition_penalty_reward(2, -1.0)(ids) == [0.0, -5 / 6, -10 / 11]
    assert per_fn["trl_rewards.overlong"] == get_soft_overlong_punishment(8, 4)(ids) == [0.0, -0.75, -1.0]
    assert per_fn["trl.rewards.think_format_reward"] == think_format_reward([[{"content": t}] for t in texts]) \
        == [1.0, 0.0, 0.0]
    assert totals == pytest.approx([1.0, -5 / 6 - 0.75, -10 / 11 - 1.0])


def test_trainer_state_and_reward_means():
    from rlpretrain.rewards import reward_means

    seen = {}

    def reads_step(prompts, completions, trainer_state, completion_ids, **_):
        seen["step"] = trainer_state.global_step
        return [float(len(c)) for c in completion_ids]

    from rlpretrain.rewards import WeightedReward
    rewards = [WeightedReward("reads_step", reads_step)]
    totals, per_fn = combine_rewards(rewards, ["p", "q"], ["a", "b"], {}, completion_ids=[[1], [1, 2, 3]], step=7)
    assert seen["step"] == 7 and totals == [1.0, 3.0]
    assert reward_means({"reward/a": [1.0, None, 2.0], "reward/b": [None], "s_pred": [9.0]}) == {"reward/a": 1.5}


@pytest.mark.slow
def test_trl_rewards_through_the_loop(small_cfg, tmp_path, monkeypatch):
    """TRL's own reward functions beside RLP's info gain: each value as TRL computes it on the dumped
    completion, each function's batch mean in metrics.jsonl."""
    import json

    from trl.rewards import get_repetition_penalty_reward, get_soft_overlong_punishment, think_format_reward

    from rlpretrain.loop import train
    from rlpretrain.tracking import read_metrics

    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent / "plugins"))
    cfg = small_cfg("trainer.max_steps=2", "dump_rollouts=true",
                    "method.rewards=[{name: info_gain}, {name: trl_rewards.repetition, weight: 0.1}, "
                    "{name: trl_rewards.overlong, weight: 0.1}, "
                    "{name: trl.rewards.think_format_reward, weight: 0.1, conversational: true}]")
    train(cfg)
    metrics = read_metrics(tmp_path / "run")
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "run" / "checkpoints" / "step_000000" / "policy")
    for step in (1, 2):
        rows = [json.loads(l) for l in (tmp_path / "run" / "rollouts" / f"step_{step:06d}.jsonl").read_text().splitlines()]
        ids = [r["completion_ids"] for r in rows]
        expected = {"reward/trl_rewards.repetition": get_repetition_penalty_reward(2, -1.0)(ids),
                    "reward/trl_rewards.overlong": get_soft_overlong_punishment(8, 4)(ids),
                    "reward/trl.rewards.think_format_reward":
                        think_format_reward([[{"content": tokenizer.decode(i, skip_special_tokens=False)}] for i in ids])}
        for key, values in expected.items():
            assert [r[key] for r in rows] == values
            assert metrics[step - 1][key] == pytest.approx(sum(values) / len(values), abs=1e-12)
        info = [r["reward/info_gain"] for r in rows]
        assert metrics[step - 1]["reward/info_gain"] == pytest.approx(sum(info) / len(info), abs=1e-9)
        for r in rows:
            assert r["reward"] == pytest.approx(r["reward/info_gain"] + 0.1 * sum(r[k] for k in expected), abs=1e-6)


# ---------------------------------------------------------------- a user's rewards.py / sandbox.py

def test_user_modules_named_rewards_and_sandbox_do_not_shadow_ours(tmp_path, monkeypatch):
    """TRL's examples name their file rewards.py: it is the user's module, ours is rlpretrain.rewards."""
    import subprocess
    from pathlib import Path

    (tmp_path / "rewards.py").write_text("def short(prompts, completions, **_):\n"
                                         "    return [1.0 / (1 + len(c)) for c in completions]\n")
    (tmp_path / "sandbox.py").write_text("raise ImportError('the user sandbox.py')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "rewards", raising=False)
    totals, _ = combine_rewards(build_rewards([_spec("rewards.short")]), ["p", "q"], ["a", "bcd"], {})
    assert totals == [0.5, 0.25]

    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-m", "rlpretrain.cli", f"model.name_or_path={tmp_path}/nowhere",
                          f"hydra.run.dir={tmp_path}/run", "method.rewards=[{name: rewards.short}]"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{repo}"})
    assert out.returncode == 1
    assert out.stderr.strip() == f"error: model.name_or_path '{tmp_path}/nowhere' does not exist (not a directory)"
    assert "is not a package" not in out.stderr
