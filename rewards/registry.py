"""Reward functions by name, user functions by dotted path, and their weighted combination.

A reward function has TRL's signature: `fn(prompts, completions, completion_ids, **columns) ->
list[float | None]`, sync or async, so TRL's own reward functions drop in unchanged. It receives
what TRL's GRPOTrainer passes: the prompts and completions (text; with `conversational: true` in
its spec, each a list of one message dict, as TRL passes a chat dataset's), `completion_ids`,
`trainer_state` (`global_step`) and the method's columns. Any real number counts (Python, NumPy,
a 0-d tensor); `None` means "this reward does not apply to this sample" and is left out of that
sample's weighted sum; NaN, inf, a wrong length or an exception stops the run with a message
naming the function and the sample.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import math
import numbers
import statistics
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
    conversational: bool = False  # prompts and completions as chat messages (TRL's conversational form)


def build_rewards(specs: Sequence[Any]) -> list[WeightedReward]:
    if not specs:
        raise RewardError("at least one reward function is required")
    return [WeightedReward(s.name, load_reward(s.name), float(s.weight), bool(getattr(s, "conversational", False)))
            for s in specs]


def _call(reward: WeightedReward, prompts, completions, columns) -> list:
    if reward.conversational:
        prompts = [[{"role": "user", "content": p}] for p in prompts]
        completions = [[{"role": "assistant", "content": c}] for c in completions]
    result = reward.fn(prompts=prompts, completions=completions, **columns)
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
        values = _call(reward, prompts, completions, columns)
    except Exception as batch_error:
        # find the sample it fails on, so the message can name it
        for i in range(n):
            sub_cols = {k: (v[i:i + 1] if isinstance(v, (list, tuple)) and len(v) == n else v) for k, v in columns.items()}
            try:
                _call(reward, prompts[i:i + 1], completions[i:i + 1], sub_cols)
            except Exception as e:
                raise RewardError(f"reward function '{reward.name}' raised {type(e).__name__}: {e} "
                                  f"on {_describe(i, prompts, completions)}") from e
        raise RewardError(f"reward function '{reward.name}' raised {type(batch_error).__name__}: "
                          f"{batch_error} on a batch of {n} samples") from batch_error
    if len(values) != n:
        raise RewardError(f"reward function '{reward.name}' returned {len(values)} values for {n} samples")
    floats = []
    for i, v in enumerate(values):
        x = None if v is None else _real(v)
        if v is not None and (x is None or not math.isfinite(x)):
            what = "not a number" if x is None or math.isnan(x) else "not a finite number"
            raise RewardError(f"reward function '{reward.name}' returned {v!r} ({what}) on "
                              f"{_describe(i, prompts, completions)}")
        floats.append(x)
    return floats


def _real(v) -> float | None:
    """A Python or NumPy real, or a 0-d array/tensor holding one, as a float; None for anything else."""
    if isinstance(v, numbers.Real):
        return float(v)
    if getattr(v, "ndim", None) == 0 and hasattr(v, "item") and isinstance(v.item(), numbers.Real):
        return float(v.item())
    return None


class TrainerState:
    """What TRL passes as `trainer_state` that a reward function reads: the step."""

    def __init__(self, global_step: int):
        self.global_step = global_step


def combine_rewards(rewards: list[WeightedReward], prompts: list, completions: list, columns: dict[str, Any],
                    completion_ids: list | None = None, step: int | None = None) -> tuple[list[float], dict[str, list]]:
    """Weighted sum per sample over the rewards that apply to it; also each function's raw values."""
    extra = {"completion_ids": completion_ids} if completion_ids is not None else {}
    if step is not None:
        extra["trainer_state"] = TrainerState(step)
    per_fn = {r.name: _run_one(r, prompts, completions, {**columns, **extra}) for r in rewards}
    totals = []
    for i in range(len(prompts)):
        applicable = [(r.weight, per_fn[r.name][i]) for r in rewards if per_fn[r.name][i] is not None]
        if not applicable:
            raise RewardError(f"every reward function returned None for {_describe(i, prompts, completions)}")
        totals.append(sum(w * v for w, v in applicable))
    return totals, per_fn


def reward_means(columns: dict[str, list]) -> dict[str, float]:
    """Each reward function's batch mean (its `reward/<name>` column, None left out), for metrics.jsonl."""
    means = {}
    for key, values in columns.items():
        real = [v for v in values if v is not None] if key.startswith("reward/") else []
        if real:
            means[key] = statistics.fmean(real)
    return means
