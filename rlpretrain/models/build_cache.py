"""A directory built once into the cache: the embedded model, a converted GGUF, RPT's format warm-up."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path


def build_once(target: Path, build: Callable[[Path], object]) -> Path:
    """`target`, calling `build(tmp_dir)` first if it is not there yet. Safe against concurrent
    builders (a lock file beside it), and a killed build never looks finished (built in a temporary
    directory, then renamed atomically)."""
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "config.json").exists():
            tmp = target.parent / f".{target.name}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            build(tmp)
            os.replace(tmp, target)
    return target


def default_cache_dir() -> Path:
    return Path(os.environ.get("RLPRETRAIN_CACHE", Path.home() / ".cache" / "rlpretrain"))


def cache_root(model_cfg) -> Path:
    """Where built models and pre-pass results are kept: `model.cache_dir`, else $RLPRETRAIN_CACHE."""
    return Path(model_cfg.cache_dir) if model_cfg.cache_dir else default_cache_dir()
