"""A run's change in one metric with its noise: the last fifth of the steps against the first fifth.

The standard error treats each step's batch mean as an independent draw (consecutive steps are
correlated, so it is a rough lower bound); under MIN_STEPS steps no comparison is made at all.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

MIN_STEPS = 10  # two fifths of at least 2 steps each: the fewest that give a spread


@dataclass
class Change:
    steps: int
    mean: float  # over every step
    first: float | None = None  # mean over the first fifth of the steps
    last: float | None = None  # ... and over the last fifth
    se: float | None = None  # standard error of last - first

    @property
    def comparable(self) -> bool:
        return self.se is not None

    @property
    def change(self) -> float:
        return self.last - self.first

    def verdict(self, name: str = "reward mean") -> str:
        if not self.comparable:
            return (f"{name} over the {self.steps} steps: {self.mean:+.4f} (too few steps to compare the first and "
                    f"last fifths: {MIN_STEPS} or more tell a change from noise)")
        direction = "rose" if self.change > 0 else "fell"
        clear = abs(self.change) > 2 * self.se
        return (f"{direction} by {self.change:+.4f}, standard error {self.se:.4f} "
                f"({'more' if clear else 'less'} than 2 standard errors: {'a change' if clear else 'no clear change'}; "
                f"steps taken as independent)")


def fifths(values: list[float]) -> Change:
    if not values:
        return Change(steps=0, mean=float("nan"))
    mean = statistics.fmean(values)
    if len(values) < MIN_STEPS:
        return Change(steps=len(values), mean=mean)
    k = len(values) // 5
    first, last = values[:k], values[-k:]
    se = math.sqrt(statistics.variance(first) / k + statistics.variance(last) / k)
    return Change(steps=len(values), mean=mean, first=statistics.fmean(first), last=statistics.fmean(last), se=se)
