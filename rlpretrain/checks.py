"""Range checks for the typed configs, at the bottom of the layers so every schema can use them.

Each schema checks its own fields in `__post_init__` (so a config built in code is checked when
it is made); `rlpretrain.config.validate` runs the same checks on the composed Hydra config,
node by node, and puts the node's path in front of the key (`rollout.temperature must be ...`).
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value that cannot work; `key` is relative to the schema that raised it."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key} {problem}")
        self.key, self.problem = key, problem


def require(ok: bool, key: str, rule: str, value) -> None:
    """Raise `<key> must be <rule>, got <value>` unless ok."""
    if not ok:
        raise ConfigError(key, f"must be {rule}, got {value!r}")
