"""Per-job resource limits: what the caller asks for, and the rlimits a job's process runs under."""

from __future__ import annotations

import math
import resource
from dataclasses import asdict, dataclass, fields

MB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Limits for one job. `timeout` is wall-clock seconds; the rest are enforced with setrlimit.

    `max_processes` counts processes *and threads* of the job's user (RLIMIT_NPROC); it only
    bites for a non-root user, which is why jobs run as `nobody` when the host is root.
    """

    timeout: float = 5.0
    cpu_seconds: int | None = None  # RLIMIT_CPU; None: the timeout rounded up
    memory_mb: int = 512  # RLIMIT_AS (address space, not RSS)
    max_processes: int = 32
    max_open_files: int = 64
    max_file_mb: int = 16  # RLIMIT_FSIZE: largest file the job may write
    max_output_bytes: int = 64 * 1024  # per stream; beyond it the job is stopped (status output_limit)
    max_value_bytes: int = MB  # size of the returned value's canonical JSON

    def __post_init__(self):
        if not (self.timeout > 0 and math.isfinite(self.timeout)):
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name != "timeout" and v is not None and (type(v) is not int or v < 1):
                raise ValueError(f"{f.name} must be a positive int, got {v!r}")

    @property
    def cpu_limit(self) -> int:
        return self.cpu_seconds or math.ceil(self.timeout)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Limits":
        return cls(**data)

    def apply(self, nproc: bool) -> None:
        """Set the rlimits of the calling process (the job's child, before it drops privileges).

        Soft == hard so the job cannot raise them back, except CPU: SIGXCPU at the soft limit, and
        the kernel's SIGKILL one second later if the job ignores it.
        """
        cpu = self.cpu_limit
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        for res, value in (
            (resource.RLIMIT_AS, self.memory_mb * MB),
            (resource.RLIMIT_NOFILE, self.max_open_files),
            (resource.RLIMIT_FSIZE, self.max_file_mb * MB),
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_MSGQUEUE, 0),
        ):
            resource.setrlimit(res, (value, value))
        if nproc:
            resource.setrlimit(resource.RLIMIT_NPROC, (self.max_processes, self.max_processes))
