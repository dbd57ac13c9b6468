"""A job's body runs where `launcher` says: `body(cfg, placer)` in this process, or in a Ray actor."""

from __future__ import annotations

from rlpretrain.launch.local import LocalPlacer

LAUNCHERS = ("local", "ray")


def launched(cfg, body, rollout_workers: bool = True):
    """`body` must be a module-level function (Ray sends it by name); `rollout_workers`: whether
    the job generates (so launcher=ray starts its rollout workers)."""
    name = cfg.launcher.name
    if name == "local":
        return body(cfg, LocalPlacer())
    if name == "ray":
        from rlpretrain.launch.ray import run_on_ray
        return run_on_ray(cfg, body, rollout_workers)
    raise ValueError(f"unknown launcher '{name}'; available: {', '.join(LAUNCHERS)}")


def single_learner_only(cfg, job: str) -> None:
    """Several learner ranks follow rank 0's RL steps (launch/ray.py); the other jobs train one rank."""
    if cfg.launcher.name == "ray" and cfg.launcher.num_learners > 1:
        raise ValueError(f"launcher.num_learners={cfg.launcher.num_learners}: the {job} job trains on one "
                         "learner rank; set launcher.num_learners=1 (several ranks serve RL jobs)")
