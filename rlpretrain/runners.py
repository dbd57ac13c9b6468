"""What `rlpretrain` runs for a config: the RL loop, unless the method registers its own runner.

Non-RL methods (next-token training, offline generation jobs) register a function
`fn(cfg) -> RunSummary | None` here under their method name.
"""

from __future__ import annotations

from rlpretrain.registry import Registry

RUNNERS: Registry = Registry("runner")


def run(cfg):
    import rlpretrain.methods  # noqa: F401  (registers methods and their runners)
    from rlpretrain.run import open_run

    cfg = open_run(cfg)  # the run directory's record: refuse a fresh run into a used one, restore on resume=auto
    if cfg.method.name in RUNNERS:
        return RUNNERS.get(cfg.method.name)(cfg)
    if cfg.launcher.name == "ray":
        from rlpretrain.launch.ray import train_on_ray
        return train_on_ray(cfg)
    if cfg.launcher.name != "local":
        raise ValueError(f"unknown launcher '{cfg.launcher.name}'; available: local, ray")
    from rlpretrain.loop import train
    return train(cfg)
