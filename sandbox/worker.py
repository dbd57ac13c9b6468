"""The long-lived worker, started already inside the isolation (see isolation.py).

It reads batches of jobs from the host on stdin and answers one result frame per job on stdout.
Each job runs in a freshly forked child (child.py), so no state leaks between jobs while the
interpreter and common modules stay warm. The worker never runs job code itself: it supervises
(wall-clock timeout, output caps), classifies how the child ended, compares the value with the
expected one, and kills and reaps everything the job started.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import select
import shutil
import signal
import time

from . import child, protocol, values
from .limits import Limits

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
# Modules small programs often import, loaded once so forked children get them for free. Kept
# short on purpose: every module here makes each fork a little slower (more memory to map).
PRELOAD = ("bisect", "collections", "copy", "functools", "heapq", "itertools", "math", "operator", "random",
           "re", "string", "typing")
GC_EVERY = 1000  # jobs between full collections of the worker's own (frozen) garbage
# SysV IPC objects outlive the process that made them; in the worker's own IPC namespace these
# per-namespace limits make them impossible, so a job cannot park memory there for later.
IPC_SYSCTLS = {"/proc/sys/kernel/shmmni": "0", "/proc/sys/kernel/msgmni": "0", "/proc/sys/kernel/sem": "0 0 0 0"}
_libc = ctypes.CDLL(None, use_errno=True)


def main(options: str) -> None:
    opts = json.loads(options)
    proto_in, proto_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)  # stray prints must not corrupt the protocol
    os.dup2(null, 1)
    os.close(null)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # same-uid jobs cannot open /proc/<worker>/fd or ptrace it
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans of a job come back to us to be killed
    # Inherited by every job and irreversible: setuid binaries cannot give privileges back.
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if opts["own_ipc"]:
        for path, value in IPC_SYSCTLS.items():
            try:
                with open(path, "w") as f:
                    f.write(value)
            except OSError:
                pass  # unprivileged user namespace: not permitted (documented)
    for name in PRELOAD:
        __import__(name)
    os.chdir(opts["scratch_root"])
    # One scratch path per worker, reused by its jobs one after another (each gets it fresh and
    # empty), so the environment naming it is set here once instead of in every child.
    os.environ.clear()
    os.environ.update(child.ENV, HOME=_scratch(opts), TMPDIR=_scratch(opts))
    protocol.write_frame(proto_out, {"ready": os.getpid()})
    done = 0
    while (frame := protocol.read_frame(proto_in)) is not None:
        # The acknowledgement tells the host these jobs were seen: a worker that dies before it
        # (killed while idle) has its batch resent to a fresh worker instead of failed.
        protocol.write_frame(proto_out, {"received": len(frame["jobs"])})
        for job in frame["jobs"]:
            protocol.write_frame(proto_out, run_job(job, opts))
            done += 1
            if done % GC_EVERY == 0:  # run_job freezes everything before each fork; collect now and then
                gc.unfreeze()
                gc.collect()


def run_job(job: dict, opts: dict) -> dict:
    try:
        limits = Limits.from_dict(job["limits"])
        expected = _expected(job)
    except (ValueError, TypeError, KeyError) as e:
        return {"status": "error", "error_type": "InvalidJob", "error": str(e)}
    scratch = _scratch(opts)
    try:
        os.mkdir(scratch, 0o700)
    except FileExistsError:  # the previous job's leftovers resisted removal: never share them
        return {"status": "error", "error_type": "SandboxError", "error": f"cannot clear scratch {scratch}"}
    if opts["drop_uid"] is not None:
        os.chown(scratch, opts["drop_uid"], opts["drop_uid"])
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    res_r, res_w = os.pipe()
    start = time.monotonic()
    # Out of the collector's sight: a collection in the child would otherwise write to every
    # object the worker owns, copying all of its memory (copy-on-write) for each job.
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        child.main(job, limits, out_w, err_w, res_w, scratch, opts)
    for fd in (out_w, err_w, res_w):
        os.close(fd)
    try:
        result = _supervise(pid, start, limits, out_r, err_r, res_r)
    finally:
        _reap_descendants()
        for fd in (out_r, err_r, res_r):
            os.close(fd)
        _remove(scratch)
    if result["status"] == "ok" and expected is not None:
        if isinstance(expected, ValueError):
            result.update(match=False, error_type="InvalidExpected", error=str(expected))
        else:
            got = values.from_canonical(result["value"])
            result["match"] = values.equal(got, expected[0], job["rel_tol"], job["abs_tol"])
    return result


def _scratch(opts: dict) -> str:
    # The root is private to the worker (its own tmpfs, or a root-owned 0711 host directory jobs
    # cannot write to), so a fixed name cannot be prepared in advance by anyone else.
    return os.path.join(opts["scratch_root"], "job")


def _remove(path: str) -> None:
    try:
        os.rmdir(path)  # the usual case: the job wrote nothing
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


def _expected(job: dict):
    """(value,) to compare against, None when there is none, or the ValueError of unparsable text."""
    if "expected" in job:
        return (values.from_canonical(job["expected"]),)
    if "expected_text" in job:
        try:
            return (values.parse_literal(job["expected_text"]),)
        except ValueError as e:
            return e
    return None


def _supervise(pid: int, start: float, limits: Limits, out_r: int, err_r: int, res_r: int) -> dict:
    """Collect output until the child exits, overflows a cap or runs out of time; then classify."""
    caps = {out_r: limits.max_output_bytes, err_r: limits.max_output_bytes, res_r: limits.max_value_bytes + 4096}
    bufs = {fd: bytearray() for fd in caps}
    poller = select.poll()
    for fd in caps:
        poller.register(fd, select.POLLIN)
    pidfd = os.pidfd_open(pid)
    poller.register(pidfd, select.POLLIN)
    deadline = start + limits.timeout
    overflow = timed_out = None
    try:
        while overflow is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            events = poller.poll(remaining * 1000)
            if any(fd == pidfd for fd, _ in events):
                break
            for fd, _ in events:
                if not _read_into(fd, bufs[fd], caps[fd], poller):
                    overflow = fd
    finally:
        os.close(pidfd)
    _kill_group(pid)
    _, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - start
    for fd in caps:  # what the child wrote before it exited; never wait on leftover writers
        os.set_blocking(fd, False)
        if overflow is None and not _drain(fd, bufs[fd], caps[fd]):
            overflow = fd
    result = {
        "wall_time": round(wall, 6),
        "cpu_time": round(usage.ru_utime + usage.ru_stime, 6),
        "match": None,
        **_stream("stdout", bufs[out_r], limits.max_output_bytes),
        **_stream("stderr", bufs[err_r], limits.max_output_bytes),
    }
    result.update(_classify(status, timed_out, overflow, out_r, err_r, res_r, bufs[res_r], limits, result["cpu_time"]))
    return result


def _classify(status, timed_out, overflow, out_r, err_r, res_r, res_buf, limits: Limits, cpu: float) -> dict:
    if overflow in (out_r, err_r):
        name = "stdout" if overflow == out_r else "stderr"
        return _fail("output_limit", "OutputLimitExceeded", f"{name} exceeded {limits.max_output_bytes} bytes")
    if overflow == res_r:
        return _fail("output_limit", "ValueTooLarge", f"returned value exceeds {limits.max_value_bytes} bytes")
    if timed_out:
        return _fail("timeout", "Timeout", f"wall-clock limit of {limits.timeout:g}s exceeded")
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limits.cpu_limit):
            return _fail("timeout", "CPUTimeLimit", f"CPU time limit of {limits.cpu_limit}s exceeded")
        return _fail("killed", "Signal", f"killed by signal {signal.Signals(sig).name}"
                     if sig in signal.valid_signals() else f"killed by signal {sig}")
    if not res_buf:
        return _fail("error", "ProcessExit", f"exited with code {os.waitstatus_to_exitcode(status)} before returning")
    try:
        report = protocol.decode(bytes(res_buf))
        if type(report) is not dict or report.get("status") not in ("ok", "error", "memory"):
            raise ValueError("unknown status")
        values.from_canonical(report.get("value"))
    except ValueError as e:
        return _fail("error", "MalformedResult", f"the job wrote something other than a result to its result pipe ({e})")
    if report["status"] == "ok":
        return {"status": "ok", "value": report.get("value"), "error_type": None, "error": None}
    return _fail(report["status"], str(report.get("error_type")), str(report.get("error"))[:2000])


def _fail(status: str, kind: str, message: str) -> dict:
    return {"status": status, "value": None, "error_type": kind, "error": message}


def _read_into(fd: int, buf: bytearray, cap: int, poller: select.poll) -> bool:
    """Read what is there; False when it goes past `cap` (keeping `cap` bytes)."""
    chunk = os.read(fd, 65536)
    if not chunk:
        poller.unregister(fd)
        return True
    return _append(buf, chunk, cap)


def _drain(fd: int, buf: bytearray, cap: int) -> bool:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return True
        if not chunk:
            return True
        if not _append(buf, chunk, cap):
            return False


def _append(buf: bytearray, chunk: bytes, cap: int) -> bool:
    room = cap - len(buf)
    buf += chunk[:room]
    return len(chunk) <= room


def _stream(name: str, buf: bytearray, cap: int) -> dict:
    return {name: buf.decode("utf-8", "replace"), f"{name}_truncated": len(buf) >= cap}


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):  # killpg: the job's session; kill: in case setsid never ran
        try:
            kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _reap_descendants() -> None:
    """Kill and reap every process the job left behind (daemons that escaped its process group).

    As a child subreaper the worker inherits all of them once their parents die, so the loop
    ends when the worker has no children at all.
    """
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            continue
        kids = _children()
        for kid in kids:
            try:
                os.kill(kid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if kids:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return
        else:
            time.sleep(0.001)  # a child is being reparented to us; it shows up in /proc next round


def _children() -> list[int]:
    me = os.getpid()
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(b")", 1)[1].split()[1]) == me:
                kids.append(int(entry))
    return kids
