"""Every execution of AZR goes through here: one sandbox pool, jobs sent as batches, counted and timed.

Callers collect the jobs of a whole phase (all proposals of a step, all solver answers of a step)
into one `JobBatch` and run it at once, so the pool's workers stay busy and the step's executions
are visible in the metrics (count and seconds).
"""

from __future__ import annotations

import time
from collections import defaultdict

from rlpretrain.sandbox import Job, Limits, SandboxPool


class Executor:
    def __init__(self, workers: int, mode: str, timeout: float, memory_mb: int):
        self.pool = SandboxPool(workers=workers, mode=mode, limits=Limits(timeout=timeout, memory_mb=memory_mb))
        self.executions = 0
        self.seconds = 0.0

    def run(self, batch: "JobBatch") -> dict:
        """Run the batch's jobs; returns {key: [Result, ...]} in the order they were added."""
        t0 = time.perf_counter()
        results = self.pool.run_batch(batch.jobs) if batch.jobs else []
        self.seconds += time.perf_counter() - t0
        self.executions += len(results)
        out: dict = defaultdict(list)
        for key, result in zip(batch.keys, results):
            out[key].append(result)
        return out

    def take_counters(self) -> tuple[int, float]:
        """Executions and seconds since the last call (one step's)."""
        counts = (self.executions, self.seconds)
        self.executions, self.seconds = 0, 0.0
        return counts

    def close(self) -> None:
        self.pool.close()


class JobBatch:
    """Jobs of one phase, each under a caller's key (e.g. (sample index, input index))."""

    def __init__(self):
        self.keys: list = []
        self.jobs: list[Job] = []

    def add(self, key, job: Job) -> None:
        self.keys.append(key)
        self.jobs.append(job)
