"""Weighted mixtures of document sources: which (source, document) comes next, seeded and resumable.

Two readings of a weight:

- ``per_sample`` (the paper's "sample weight", TPT Setup: FineWeb-Edu at 0.125): every document of a
  source counts `weight`, so a source is drawn with probability ∝ weight × its size;
- ``proportion``: a source is drawn with probability ∝ weight, whatever its size.

Within a source, documents are visited in a seeded shuffled order, one epoch after another (as
`DocumentStream`). The state (RNG and per-source cursors) is picklable for exact resume.
"""

from __future__ import annotations

import random

WEIGHT_MODES = ("per_sample", "proportion")


class Mixture:
    def __init__(self, sizes: list[int], weights: list[float], seed: int, mode: str = "per_sample"):
        if mode not in WEIGHT_MODES:
            raise ValueError(f"weight_mode must be one of {WEIGHT_MODES}, got '{mode}'")
        if len(sizes) != len(weights) or not sizes:
            raise ValueError("a mixture needs one weight per source and at least one source")
        if any(w < 0 for w in weights) or any(n <= 0 for n in sizes):
            raise ValueError(f"weights must be >= 0 and sources non-empty (sizes {sizes}, weights {weights})")
        mass = [w * n if mode == "per_sample" else w for w, n in zip(weights, sizes)]
        if sum(mass) <= 0:
            raise ValueError("all mixture weights are zero")
        self.probs = [m / sum(mass) for m in mass]
        self.sizes, self.seed = list(sizes), seed
        self.rng = random.Random(seed)
        self.epochs = [0] * len(sizes)
        self.cursors = [0] * len(sizes)
        self._orders: dict[tuple[int, int], list[int]] = {}

    def _order(self, source: int, epoch: int) -> list[int]:
        key = (source, epoch)
        if key not in self._orders:
            self._orders = {k: v for k, v in self._orders.items() if k[0] != source}  # one epoch per source cached
            order = list(range(self.sizes[source]))
            random.Random(f"{self.seed}:{source}:{epoch}").shuffle(order)
            self._orders[key] = order
        return self._orders[key]

    def next(self) -> tuple[int, int]:
        """The next (source index, document index)."""
        source = self.rng.choices(range(len(self.sizes)), weights=self.probs)[0]
        if self.cursors[source] == self.sizes[source]:
            self.epochs[source] += 1
            self.cursors[source] = 0
        doc = self._order(source, self.epochs[source])[self.cursors[source]]
        self.cursors[source] += 1
        return source, doc

    def take(self, n: int) -> list[tuple[int, int]]:
        return [self.next() for _ in range(n)]

    def state_dict(self) -> dict:
        return {"rng": self.rng.getstate(), "epochs": list(self.epochs), "cursors": list(self.cursors)}

    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate(state["rng"])
        self.epochs, self.cursors = list(state["epochs"]), list(state["cursors"])
