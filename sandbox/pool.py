"""A pool of warm, isolated workers. Jobs are queued, sent to workers in small batches, and
answered as futures (or awaited with asyncio). A worker that dies or hangs is replaced."""

from __future__ import annotations

import atexit
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import Future
from typing import Iterable

from . import isolation, protocol, values
from .isolation import SandboxError
from .jobs import Job, Result
from .limits import Limits

GRACE = 5.0  # seconds past a job's own timeout before the host declares its worker hung
START_TIMEOUT = 30.0


class _Worker:
    """Host-side handle of one worker process (the bwrap/unshare process, or the worker itself)."""

    def __init__(self, mode: str, scratch_mb: int):
        self.launch = isolation.launch(mode, scratch_mb)
        self._log = tempfile.TemporaryFile()  # bwrap's or the worker's own errors, for diagnostics
        self.proc = subprocess.Popen(
            self.launch.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            env=isolation.ENV, cwd="/", start_new_session=True, bufsize=0,
        )

    def wait_ready(self) -> None:
        if protocol.read_frame(self.proc.stdout.fileno(), time.monotonic() + START_TIMEOUT) is None:
            self.kill()
            raise SandboxError(f"sandbox worker ({self.launch.mode}) failed to start: {self.log_tail()}")

    def send(self, jobs: list[dict]) -> None:
        protocol.write_frame(self.proc.stdin.fileno(), {"jobs": jobs})

    def receive(self, deadline: float) -> dict | None:
        try:
            return protocol.read_frame(self.proc.stdout.fileno(), deadline)
        except (OSError, ValueError):
            return None

    def death(self) -> str:
        code = self.proc.poll()
        if code is None:
            return "sandbox worker stopped answering and was killed"
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return f"sandbox worker died ({how}) {self.log_tail()}".strip()

    def log_tail(self) -> str:
        self._log.seek(0, os.SEEK_END)
        self._log.seek(max(0, self._log.tell() - 2000))
        return self._log.read().decode("utf-8", "replace").strip()

    def close(self, timeout: float = 5.0) -> None:
        """Ask politely (EOF on stdin makes the worker exit), then kill the whole process group."""
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self._log):
            stream.close()
        if self.launch.host_scratch:
            shutil.rmtree(self.launch.host_scratch, ignore_errors=True)


class SandboxPool:
    """Warm isolated workers; thread-safe; use as a context manager or call close().

    workers: number of worker processes (default: CPU count). mode: "auto" (strongest available),
    "bwrap", "unshare" or "rlimits" (the last two warn once about what they do not protect).
    limits: default per-job limits. scratch_mb: size of each bwrap worker's tmpfs scratch.
    batch_size: most jobs sent to one worker at once when the queue is long.
    """

    def __init__(self, workers: int | None = None, *, mode: str = "auto", limits: Limits | None = None,
                 scratch_mb: int = 64, batch_size: int = 8):
        self.mode = isolation.resolve(mode)
        isolation.warn_reduced(self.mode)
        self.limits = limits or Limits()
        self.scratch_mb = scratch_mb
        self.batch_size = batch_size
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        started = [_Worker(self.mode, scratch_mb) for _ in range(workers or os.cpu_count() or 1)]
        try:
            for w in started:
                w.wait_ready()
        except SandboxError:
            for w in started:
                w.kill()
            raise
        self._slots = [_Slot(self, w) for w in started]

    def submit(self, job: Job) -> Future:
        """Queue a job; its Future resolves to a Result. Raises ValueError now if the job is not plain data."""
        if self._closed:
            raise RuntimeError("SandboxPool is closed")
        wire = job.to_wire(self.limits)
        fut: Future = Future()
        self._queue.put((wire, fut))
        return fut

    def run(self, job: Job) -> Result:
        return self.submit(job).result()

    def run_batch(self, jobs: Iterable[Job]) -> list[Result]:
        futures = [self.submit(j) for j in jobs]
        return [f.result() for f in futures]

    async def arun(self, job: Job) -> Result:
        import asyncio  # only async callers pay for it (workers import this module too)

        return await asyncio.wrap_future(self.submit(job))

    async def arun_batch(self, jobs: Iterable[Job]) -> list[Result]:
        import asyncio

        return list(await asyncio.gather(*(asyncio.wrap_future(self.submit(j)) for j in jobs)))

    def check_determinism(self, job: Job, runs: int = 2) -> tuple[bool, list[Result]]:
        """Run `job` in `runs` separate processes; deterministic when all finished (ok or error)
        with the same status, canonical value and error type."""
        results = self.run_batch([job] * runs)
        outcomes = {(r.status, values.canonical_text(r.value), r.error_type) for r in results}
        return len(outcomes) == 1 and results[0].status in ("ok", "error"), results

    def worker_pids(self) -> list[int]:
        """Host pids of the current worker processes (the bwrap/unshare process in those modes)."""
        return [s.worker.proc.pid for s in self._slots if s.worker is not None]

    def close(self) -> None:
        """Finish the jobs already submitted, then stop every worker and its processes."""
        if self._closed:
            return
        self._closed = True
        for _ in self._slots:
            self._queue.put(None)
        for s in self._slots:
            s.thread.join()

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Slot:
    """One thread feeding one worker; restarts the worker when it dies."""

    def __init__(self, pool: SandboxPool, worker: _Worker):
        self.pool = pool
        self.worker: _Worker | None = worker
        self.thread = threading.Thread(target=self._loop, name="sandbox-slot", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        q, pool = self.pool._queue, self.pool
        try:
            while (item := q.get()) is not None:
                batch = [item]
                # Take more only while others would still find work, so short bursts spread out.
                while len(batch) < pool.batch_size and q.qsize() >= len(pool._slots):
                    nxt = q.get()
                    if nxt is None:
                        q.put(None)
                        break
                    batch.append(nxt)
                self._run([(wire, fut) for wire, fut in batch if fut.set_running_or_notify_cancel()])
        finally:
            if self.worker is not None:
                self.worker.close()
                self.worker = None

    def _run(self, batch: list[tuple[dict, Future]]) -> None:
        pending, failures = batch, 0
        while pending:
            if self.worker is not None and self.worker.proc.poll() is not None:
                self._discard()  # died while idle: restart it rather than fail a job it never saw
            try:
                if self.worker is None:
                    self.worker = _Worker(self.pool.mode, self.pool.scratch_mb)
                    self.worker.wait_ready()
                self.worker.send([wire for wire, _ in pending])
                if self.worker.receive(time.monotonic() + START_TIMEOUT) is None:
                    raise SandboxError(f"worker did not take its jobs: {self.worker.death()}")
            except (SandboxError, OSError) as e:
                self._discard()
                failures += 1
                if failures >= 3:
                    for _, fut in pending:
                        fut.set_exception(e if isinstance(e, SandboxError) else SandboxError(f"cannot reach worker: {e}"))
                    return
                continue
            done = 0
            for wire, fut in pending:
                answer = self.worker.receive(time.monotonic() + wire["limits"]["timeout"] + GRACE)
                done += 1
                if answer is None:
                    fut.set_result(Result("killed", error_type="WorkerDied", error=self.worker.death(),
                                          mode=self.pool.mode))
                    self._discard()
                    break
                try:
                    fut.set_result(Result.from_json(answer, self.pool.mode))
                except ValueError as e:
                    fut.set_result(Result("error", error_type="MalformedResult", error=str(e), mode=self.pool.mode))
            pending = pending[done:]

    def _discard(self) -> None:
        if self.worker is not None:
            self.worker.kill()
            self.worker = None


_default: SandboxPool | None = None
_default_lock = threading.Lock()


def default_pool() -> SandboxPool:
    """A process-wide pool (auto mode, default limits), created on first use and closed at exit."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = SandboxPool()
            atexit.register(_default.close)
        return _default


def run(job: Job) -> Result:
    return default_pool().run(job)


def run_batch(jobs: Iterable[Job]) -> list[Result]:
    return default_pool().run_batch(jobs)


async def arun_batch(jobs: Iterable[Job]) -> list[Result]:
    return await default_pool().arun_batch(jobs)
