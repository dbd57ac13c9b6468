"""Shared helpers for the sandbox tests (process scanning without psutil)."""

from __future__ import annotations

import os
import warnings

import pytest

from rlpretrain.sandbox import SandboxPool, SandboxWarning
from rlpretrain.sandbox import isolation

NOBODY = 65534
BWRAP = isolation.available("bwrap")
needs_bwrap = pytest.mark.skipif(not BWRAP, reason="bubblewrap (bwrap) is not installed or cannot run here")


def make_pool(mode: str, **kw) -> SandboxPool:
    if not isolation.available(mode):
        pytest.skip(f"sandbox mode {mode} cannot run here")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SandboxWarning)
        return SandboxPool(mode=mode, **kw)


def _stat(pid: str) -> tuple[int, int] | None:
    """(ppid, uid) of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        return ppid, os.stat(f"/proc/{pid}").st_uid
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def processes() -> dict[int, tuple[int, int]]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (info := _stat(entry)) is not None:
            out[int(entry)] = info
    return out


def descendants(root: int | None = None) -> set[int]:
    root = root or os.getpid()
    procs = processes()
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, (ppid, _) in procs.items() if ppid in frontier} - found
        found |= frontier
    return found


def nobody_processes() -> set[int]:
    return {pid for pid, (_, uid) in processes().items() if uid == NOBODY}
