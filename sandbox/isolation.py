"""How a worker is isolated, and the command line that starts one.

Modes, strongest first:
- "bwrap": bubblewrap namespaces (user where needed, pid, net, ipc, uts, cgroup, mount). Only
  /usr, the interpreter's prefix and this package are visible, read-only; /tmp is a size-limited
  tmpfs for job scratch; no network; capabilities cut to what the worker needs to drop a job to
  `nobody`; no-new-privileges.
- "unshare": util-linux unshare: own pid/net/ipc/uts namespaces, but the host filesystem stays
  visible (protected only by file permissions) and scratch lives on the host's temp dir.
- "rlimits": a plain process with rlimits (and `nobody` when root): no namespaces at all.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass

MODES = ("bwrap", "unshare", "rlimits")
NOBODY = 65534
LIB_INSIDE = "/opt/sandbox-lib"  # where bwrap mounts this package's parent directory
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
# What a root bwrap worker keeps: switching a job to nobody, preparing and removing its scratch
# directory, and killing what the job started. The job's child loses all of them at setuid.
WORKER_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL")
BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from sandbox.worker import main; main(sys.argv[2])"

log = logging.getLogger("sandbox")


class SandboxError(RuntimeError):
    """The sandbox itself cannot run (asked-for mode unavailable, worker fails to start)."""


class SandboxWarning(UserWarning):
    """Jobs run with less isolation than bubblewrap gives."""


MISSING = {
    "bwrap": (),
    "unshare": (
        "the host filesystem is visible to jobs (read-only only where file permissions say so: world-readable "
        "files, including the project's, can be read; world-writable places such as /tmp and /dev/shm can be "
        "written)",
        "job scratch is on the host's temp dir with no total size limit (only RLIMIT_FSIZE per file)",
        "capabilities and syscalls are not filtered beyond dropping to the job user",
    ),
    "rlimits": (
        "NO network isolation: jobs can open sockets and connect anywhere the host can",
        "no pid/ipc namespaces: jobs can see host processes in /proc and use host SysV IPC",
        "the host filesystem is visible to jobs (read-only only where file permissions say so: world-readable "
        "files, including the project's, can be read; world-writable places such as /tmp and /dev/shm can be "
        "written)",
        "job scratch is on the host's temp dir with no total size limit (only RLIMIT_FSIZE per file)",
        "background processes a job starts can outlive a worker that is killed abruptly",
    ),
}
NOT_ROOT = (
    "not root: jobs run as the calling user instead of nobody, so they can signal the caller's own processes "
    "wherever there is no pid namespace, and RLIMIT_NPROC is not applied outside a user namespace"
)


@dataclass(frozen=True)
class Launch:
    """Everything needed to start one worker; `host_scratch` is removed by the caller afterwards."""

    mode: str
    argv: tuple[str, ...]
    host_scratch: str | None


def is_root() -> bool:
    return os.geteuid() == 0


def interpreter() -> str:
    # The real binary, not a venv shim: inside bwrap only the base installation is mounted, and the
    # worker needs the standard library alone (-I -S: no site-packages, no PYTHON* variables).
    return os.path.realpath(sys.executable)


def package_parent() -> str:
    # the real folder: the host imports this package as rlpretrain.sandbox through a symlink, the
    # worker as the top-level `sandbox` from here, with nothing else on its path
    return os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def wrapper(mode: str, scratch_mb: int) -> list[str]:
    """The namespace part of the command line (empty for rlimits)."""
    if mode == "bwrap":
        return _bwrap(scratch_mb)
    if mode == "unshare":
        args = [shutil.which("unshare") or "unshare", "--fork", "--pid", "--mount-proc", "--net", "--ipc",
                "--uts", "--kill-child"]
        return args + ([] if is_root() else ["--user", "--map-root-user"]) + ["--"]
    return []


def _bwrap(scratch_mb: int) -> list[str]:
    # As root, no user namespace: inside it only uid 0 would be mapped, and the worker could not
    # switch a job to nobody. Unprivileged, the user namespace is what makes the rest possible.
    unshare = (["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
               if is_root() else ["--unshare-all"])
    args = [shutil.which("bwrap") or "bwrap", *unshare, "--die-with-parent", "--new-session",
            "--hostname", "sandbox", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    args += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    prefix = os.path.realpath(sys.base_prefix)
    if prefix != "/usr" and not prefix.startswith("/usr/"):
        # bwrap would create the missing parents (e.g. /root of a pyenv install) as 0700, which
        # the job user could not traverse.
        parent = os.path.dirname(prefix)
        parents = []
        while parent != "/":
            parents.insert(0, parent)
            parent = os.path.dirname(parent)
        for p in parents:
            args += ["--perms", "0755", "--dir", p]
        args += ["--ro-bind", prefix, prefix]
    args += ["--ro-bind", os.path.join(package_parent(), "sandbox"), f"{LIB_INSIDE}/sandbox",
             "--dev", "/dev", "--proc", "/proc", "--size", str(scratch_mb << 20), "--tmpfs", "/tmp",
             "--chdir", "/tmp"]
    if is_root():
        args += ["--cap-drop", "ALL"]
        for cap in WORKER_CAPS:
            args += ["--cap-add", cap]
    return args + ["--"]


def launch(mode: str, scratch_mb: int) -> Launch:
    root = is_root()
    host_scratch = None
    if mode == "bwrap":
        scratch_root, lib = "/tmp", LIB_INSIDE
    else:
        host_scratch = tempfile.mkdtemp(prefix="sandbox-worker-")
        os.chmod(host_scratch, 0o711)  # the job user may enter its own directory, not list others
        scratch_root, lib = host_scratch, package_parent()
    options = {
        "scratch_root": scratch_root,
        "drop_uid": NOBODY if root else None,
        "own_ipc": mode != "rlimits",
        # RLIMIT_NPROC counts every process of the job's uid in its user namespace: meaningful for
        # nobody or inside a fresh user namespace, harmful for the caller's own uid on the host.
        "nproc": root or mode != "rlimits",
    }
    argv = (*wrapper(mode, scratch_mb), interpreter(), "-I", "-S", "-c", BOOT, lib, json.dumps(options))
    return Launch(mode, argv, host_scratch)


@functools.cache
def available(mode: str) -> bool:
    """Whether `mode` can start an interpreter here (probed once per process)."""
    if mode == "rlimits":
        return True
    if shutil.which("bwrap" if mode == "bwrap" else "unshare") is None:
        return False
    lib = LIB_INSIDE if mode == "bwrap" else package_parent()
    probe = [*wrapper(mode, 1), interpreter(), "-I", "-S", "-c",
             "import sys; sys.path.insert(0, sys.argv[1]); import sandbox.worker", lib]
    try:
        return subprocess.run(probe, env=ENV, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=30, cwd="/").returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def resolve(mode: str) -> str:
    """The mode to use: "auto" picks the strongest available one; a named mode must be available."""
    if mode == "auto":
        return next(m for m in MODES if available(m))
    if mode not in MODES:
        raise ValueError(f"unknown sandbox mode {mode!r}; expected auto or one of {MODES}")
    if not available(mode):
        raise SandboxError(f"sandbox mode {mode!r} cannot run on this machine")
    return mode


def missing_protections(mode: str) -> list[str]:
    missing = list(MISSING[mode]) + ([] if is_root() else [NOT_ROOT])
    blocked = _blocked_stdlib() if mode != "bwrap" and is_root() else None
    if blocked:
        missing.append(f"the standard library at {blocked} is out of reach of the job user (a parent directory is "
                       "not world-searchable), so jobs can import only the modules the worker preloaded")
    return missing


def _blocked_stdlib() -> str | None:
    """Outside bwrap, jobs run as nobody on the host tree: an interpreter under e.g. /root is unreadable."""
    stdlib = os.path.dirname(os.__file__)
    path = stdlib
    while path != "/":
        if not os.stat(path).st_mode & 0o001:
            return stdlib
        path = os.path.dirname(path)
    return None


@functools.cache
def warn_reduced(mode: str) -> None:
    """One warning per process and mode, naming exactly what is not protected."""
    missing = missing_protections(mode)
    if missing:
        hint = " (weaker than bwrap; install bubblewrap with scripts/install_system_deps.sh)" if mode != "bwrap" else ""
        msg = f"sandbox running in {mode!r} mode{hint}; NOT protected: " + "; ".join(missing)
        log.warning(msg)
        warnings.warn(msg, SandboxWarning, stacklevel=3)
