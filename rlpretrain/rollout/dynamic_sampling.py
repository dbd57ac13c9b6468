"""Dynamic sampling (DAPO, arXiv 2503.14476 §3.2; used by RPT from step 500): keep only groups
whose rewards are not all equal, and sample more prompts until the batch is full again.

Generic over what a group is: the caller gives `sample(n, round) -> list of groups` and
`rewards_of(group) -> list[float]`; `dynamic_sample_batch` does it for rounds that are RolloutBatches.
At most `max_rounds` sampling rounds are made (the first
included); when the batch is still short after them, it is returned short with a warning (and
`short=True` in the stats), and if no group at all was informative, the last round's groups are
returned unfiltered so the step still has data (their advantages are zero under GRPO).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

from rlpretrain.rollout.batch import RolloutBatch

log = logging.getLogger(__name__)
G = TypeVar("G")


def informative(rewards: Sequence[float], tol: float = 0.0) -> bool:
    """A group teaches something under a group baseline only if its rewards differ."""
    return len(rewards) > 1 and max(rewards) - min(rewards) > tol


@dataclass
class DynamicSamplingResult(Generic[G]):
    groups: list[G]
    rounds: int = 1
    sampled: int = 0  # groups drawn in all rounds
    dropped: int = 0  # groups with all-equal rewards
    short: bool = False  # fewer than the target after max_rounds
    fallback: bool = False  # nothing informative: the last round returned unfiltered
    per_round: list[int] = field(default_factory=list)  # groups drawn in each round

    def stats(self, prefix: str = "dynamic_sampling/") -> dict[str, float]:
        return {f"{prefix}rounds": float(self.rounds), f"{prefix}sampled_groups": float(self.sampled),
                f"{prefix}dropped_groups": float(self.dropped), f"{prefix}kept_groups": float(len(self.groups)),
                f"{prefix}short": float(self.short), f"{prefix}fallback": float(self.fallback)}


def dynamic_sample(sample: Callable[[int, int], list[G]], rewards_of: Callable[[G], Sequence[float]], target: int,
                   max_rounds: int = 4, oversample: float = 1.0, tol: float = 0.0) -> DynamicSamplingResult[G]:
    """Draw groups until `target` informative ones are kept (extra ones from the last round are cut).

    Round r asks `sample(n, r)` for the number still missing (times `oversample`, at least 1).
    """
    if target < 1 or max_rounds < 1:
        raise ValueError("dynamic sampling needs target >= 1 and max_rounds >= 1")
    kept: list[G] = []
    result = DynamicSamplingResult(groups=kept, rounds=0)
    last: list[G] = []
    for r in range(max_rounds):
        need = target - len(kept)
        n = need if r == 0 else max(1, int(round(need * oversample)))
        last = sample(n, r)
        result.rounds, result.sampled = r + 1, result.sampled + len(last)
        result.per_round.append(len(last))
        for group in last:
            if informative(rewards_of(group), tol):
                kept.append(group)
            else:
                result.dropped += 1
        if len(kept) >= target:
            break
    result.groups = kept[:target]
    if len(kept) < target:
        result.short = True
        if not kept:
            result.groups, result.fallback = list(last), True
            log.warning("dynamic sampling: no group with differing rewards in %d rounds (%d groups); "
                        "using the last round unfiltered (zero advantages)", result.rounds, result.sampled)
        else:
            log.warning("dynamic sampling: only %d of %d groups with differing rewards after %d rounds; "
                        "the batch is short", len(kept), target, result.rounds)
    return result


def dynamic_sample_batch(sample: Callable[[int, int], RolloutBatch], target: int, max_rounds: int = 4,
                         oversample: float = 1.0, tol: float = 0.0) -> RolloutBatch:
    """`dynamic_sample` where round r's `sample(n, r)` is a batch of n groups: the kept groups of each
    round are selected from it and the rounds joined (`RolloutBatch.concat`: group ids 0.. in kept order,
    timings summed over all rounds, dropped groups' included). The result's stats say how it went."""
    rounds: list[RolloutBatch] = []

    def groups(n: int, r: int) -> list[tuple[int, list[int]]]:
        batch = sample(n, r)
        rounds.append(batch)
        members: dict[int, list[int]] = {}
        for i, g in enumerate(batch.group):
            members.setdefault(g, []).append(i)
        return [(r, rows) for rows in members.values()]  # (round, the group's rows), in order

    result = dynamic_sample(groups, lambda g: [rounds[g[0]].rewards[i] for i in g[1]], target, max_rounds,
                            oversample, tol)
    batch = RolloutBatch.concat([b.select([i for r, rows in result.groups if r == k for i in rows])
                                 for k, b in enumerate(rounds)])
    batch.stats.update(result.stats())
    return batch
