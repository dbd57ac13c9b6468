"""The forked child that runs one job: lock itself down, run the code, report the value as JSON.

Everything the job's code can touch is already inside the worker's isolation; this adds per-job
state: its own session (so its whole process group can be killed), a private scratch directory,
rlimits and, when the worker is root, the uid/gid of `nobody`.
The expected value is not here: comparison happens in the worker, out of the job's reach.
"""

from __future__ import annotations

import builtins
import ctypes
import os
import sys
import traceback

from . import protocol, values
from .limits import Limits

PR_SET_PDEATHSIG = 1
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}  # plus HOME/TMPDIR: the scratch dir
# Bound once in the worker: creating the function object in each child would cost page copies.
_libc_prctl = ctypes.CDLL(None, use_errno=True).prctl


def main(job: dict, limits: Limits, out_w: int, err_w: int, res_w: int, scratch: str, opts: dict) -> None:
    """Never returns: the child always leaves with os._exit (no atexit, no inherited cleanup)."""
    try:
        _lock_down(limits, out_w, err_w, res_w, scratch, opts)
    except BaseException as e:  # never run the code half-confined
        protocol.write_frame(res_w, {"status": "error", "error_type": "SandboxSetupError", "error": repr(e)})
        os._exit(70)
    me = os.getpid()
    report = _execute(job, limits)
    if os.getpid() == me:  # a fork made by the job's code reaches here too; only the child answers
        protocol.write_frame(res_w, report)
    os._exit(0)


def _lock_down(limits: Limits, out_w: int, err_w: int, res_w: int, scratch: str, opts: dict) -> None:
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    # Drop every other descriptor, above all the worker's protocol pipes.
    os.closerange(3, res_w)
    os.closerange(res_w + 1, os.sysconf("SC_OPEN_MAX"))
    os.chdir(scratch)
    limits.apply(nproc=opts["nproc"])
    uid = opts["drop_uid"]
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise PermissionError("could not drop privileges")
    _prctl(PR_SET_PDEATHSIG, 9)  # after setuid, which clears it: die with the worker
    os.umask(0o077)


def _prctl(option: int, value: int) -> None:
    if _libc_prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _execute(job: dict, limits: Limits) -> dict:
    try:
        if job["args_text"] is not None:
            args, kwargs = values.parse_args(job["args_text"])
        else:
            args = [values.from_canonical(a) for a in job["args"]]
            kwargs = {k: values.from_canonical(v) for k, v in job["kwargs"].items()}
    except ValueError as e:
        return _error("ArgumentError", str(e))
    func = job["func"]
    namespace = {"__name__": "__main__" if func is None else "__job__", "__builtins__": builtins}
    try:
        try:
            exec(compile(job["code"], "<job>", "exec"), namespace)
            value = None
            if func is not None:
                fn = namespace.get(func)
                if not callable(fn):
                    raise NameError(f"the code defines no function named {func!r}")
                value = fn(*args, **kwargs)
        finally:
            _flush()
    except SystemExit as e:
        if func is None and e.code in (None, 0):
            return {"status": "ok", "value": None}
        return _error("SystemExit", f"exit code {e.code!r}" if type(e.code) in (int, str) else "exit")
    except BaseException as e:
        return _exception(e)
    try:
        canonical = values.to_canonical(value)
        if len(values.canonical_text(canonical)) > limits.max_value_bytes:
            return _error("ValueTooLarge", f"returned value exceeds {limits.max_value_bytes} bytes")
    except values.UnsupportedValue as e:
        return _error("UnsupportedType", str(e))
    except BaseException as e:
        return _exception(e)
    return {"status": "ok", "value": canonical}


def _error(kind: str, message: str) -> dict:
    return {"status": "error", "error_type": kind, "error": message[:2000]}


def _exception(e: BaseException) -> dict:
    kind = type(e).__name__ if type(type(e).__name__) is str else "Exception"
    try:
        message = str(e)
    except BaseException:
        message = "<unprintable message>"
    try:
        traceback.print_exception(type(e), e, e.__traceback__.tb_next if e.__traceback__ else None)
        _flush()
    except BaseException:
        pass
    report = _error(kind, message)
    if isinstance(e, MemoryError):
        report["status"] = "memory"
    return report


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:
            pass
