"""Reward functions by name, user functions by dotted path, and their weighted combination.

A reward function has TRL's signature: `fn(prompts, completions, **columns) -> list[float | None]`,
sync or async. `None` means "this reward does not apply to this sample" and is left out of that
sample's weighted sum; NaN, a wrong length or an exception stops the run with a message naming
the function and the sample.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from rlpretrain.registry import Registry

REWARDS: Registry = Registry("reward")
register_reward = REWARDS.register


class RewardError(RuntimeError):
    pass


def load_reward(name: str) -> Callable:
    """A registered name, or a dotted path 'pkg.module.fn' / 'pkg.module:fn' to any callable."""
    if name in REWARDS:
        return REWARDS.get(name)
    module_name, sep, attr = name.replace(":", ".").rpartition(".")
    if not sep:
        raise RewardError(f"reward '{name}' is not registered (available: {', '.join(REWARDS.names())}) "
                          "and is not a dotted path 'package.module.function'")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise RewardError(f"reward '{name}': cannot import module '{module_name}': {type(e).__name__}: {e}") from e
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise RewardError(f"reward '{name}': module '{module_name}' has no callable '{attr}'")
    return fn


@dataclass
class WeightedReward:
    name: str
    fn: Callable
    weight: float = 1.0


def build_rewards(specs: Sequence[Any]) -> list[WeightedReward]:
    if not specs:
        raise RewardError("at least one reward function is required")
    return [WeightedReward(s.name, load_reward(s.name), float(s.weight)) for s in specs]


def _call(fn: Callable, prompts, completions, columns) -> list:
    result = fn(prompts=prompts, completions=completions, **columns)
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    return list(result)


async def _await(awaitable):
    return await awaitable


def _describe(i: int, prompts, completions) -> str:
    def short(x):
        s = repr(x)
        return s if len(s) <= 120 else s[:117] + "..."
    return f"sample {i} (prompt={short(prompts[i])}, completion={short(completions[i])})"


def _run_one(reward: WeightedReward, prompts, completions, columns) -> list:
    n = len(prompts)
    try:
        values = _call(reward.fn, prompts, completions, columns)
    except Exception as batch_error:
        # find the sample it fails on, so the message can name it
        for i in range(n):
            sub_cols = {k: (v[i:i + 1] if isinstance(v, (list, tuple)) and len(v) == n else v) for k, v in columns.items()}
            try:
                _call(reward.fn, prompts[i:i + 1], completions[i:i + 1], sub_cols)
            except Exception as e:
                raise RewardError(f"reward function '{reward.name}' raised {type(e).__name__}: {e} "
                                  f"on {_describe(i, prompts, completions)}") from e
        raise RewardError(f"reward function '{reward.name}' raised {type(batch_error).__name__}: "
                          f"{batch_error} on a batch of {n} samples") from batch_error
    if len(values) != n:
        raise RewardError(f"reward function '{reward.name}' returned {len(values)} values for {n} samples")
    for i, v in enumerate(values):
        if v is not None and (not isinstance(v, (int, float)) or math.isnan(float(v))):
            raise RewardError(f"reward function '{reward.name}' returned {v!r} (not a number) on "
                              f"{_describe(i, prompts, completions)}")
    return [None if v is None else float(v) for v in values]


def combine_rewards(rewards: list[WeightedReward], prompts: list, completions: list,
                    columns: dict[str, Any]) -> tuple[list[float], dict[str, list]]:
    """Weighted sum per sample over the rewards that apply to it; also each function's raw values."""
    per_fn = {r.name: _run_one(r, prompts, completions, columns) for r in rewards}
    totals = []
    for i in range(len(prompts)):
        applicable = [(r.weight, per_fn[r.name][i]) for r in rewards if per_fn[r.name][i] is not None]
        if not applicable:
            raise RewardError(f"every reward function returned None for {_describe(i, prompts, completions)}")
        totals.append(sum(w * v for w, v in applicable))
    return totals, per_fn
