"""Task buffers, one per task type (AZR §3.3-3.4).

- `references(k)`: K tasks sampled uniformly without replacement (the proposer's examples);
- `draw(b)`: the solver's B tasks, uniformly, without replacement while the buffer is large enough;
- duplicates (same program and input(s)) are not added twice;
- a cap: when full, the oldest task is evicted (first in, first out). The official code stops
  adding once a buffer is full and so keeps the oldest tasks forever; evicting the oldest keeps the
  buffer following the proposer as it improves, while the cap (paper: 16,384) bounds memory and
  the prompt's reference pool. The seed is evicted like any other task once the buffer is full.

The state (tasks in order) goes into checkpoints, so a resumed run samples exactly as an
uninterrupted one.
"""

from __future__ import annotations

import random
from collections import deque

from rlpretrain.methods.azr.tasks import Task


class TaskBuffer:
    def __init__(self, cap: int, tasks: list[Task] = ()):
        if cap < 1:
            raise ValueError(f"method.buffer_cap must be at least 1, got {cap}")
        self.cap = cap
        self.tasks: deque[Task] = deque()
        self._keys: set = set()
        self.added = 0  # tasks ever accepted (the buffer's growth, eviction aside)
        for t in tasks:
            self.add(t)

    def __len__(self) -> int:
        return len(self.tasks)

    def __contains__(self, task: Task) -> bool:
        return task.key() in self._keys

    def add(self, task: Task) -> bool:
        key = task.key()
        if key in self._keys:
            return False
        if len(self.tasks) == self.cap:
            self._keys.discard(self.tasks.popleft().key())
        self.tasks.append(task)
        self._keys.add(key)
        self.added += 1
        return True

    def references(self, k: int, rng: random.Random) -> list[Task]:
        return rng.sample(list(self.tasks), min(k, len(self.tasks)))

    def draw(self, b: int, rng: random.Random) -> list[Task]:
        pool = list(self.tasks)
        if not pool:
            return []
        return rng.sample(pool, b) if b <= len(pool) else rng.choices(pool, k=b)

    def state_dict(self) -> dict:
        return {"tasks": [t.to_dict() for t in self.tasks], "added": self.added}

    def load_state_dict(self, state: dict) -> None:
        self.tasks.clear()
        self._keys.clear()
        for d in state["tasks"]:
            task = Task.from_dict(d)
            self.tasks.append(task)
            self._keys.add(task.key())
        self.added = state["added"]
