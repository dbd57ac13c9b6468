"""What a caller submits (Job) and what comes back (Result), and their JSON wire forms."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from . import values
from .limits import Limits

STATUSES = ("ok", "error", "timeout", "memory", "killed", "output_limit")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # `expected` not given (None is a legitimate expected value)


@dataclass(frozen=True)
class Job:
    """Code plus an entry call whose arguments are data, never spliced into the code text.

    - `func`: the function to call after running `code` ("f"); None runs `code` as a script
      (with `__name__ == "__main__"`) and returns None.
    - `args` / `kwargs`: plain builtin values, or `args_text`: literal argument-list text such as a
      model's abduction answer (`'1, [2, 3]'`), parsed with `ast` inside the sandbox; anything that
      is not literals (`3) or True or (3`) is an `ArgumentError`, never code.
    - `expected` (a value) or `expected_text` (literal text): compared inside the sandbox with
      `values.equal`, floats within `rel_tol`/`abs_tol`; the result's `match` says whether it held.
      The expected value never reaches the process running the job's code.
    - `limits`: overrides the pool's limits for this job.
    """

    code: str
    func: str | None = "f"
    args: tuple | list = ()
    kwargs: dict = field(default_factory=dict)
    args_text: str | None = None
    expected: Any = UNSET
    expected_text: str | None = None
    rel_tol: float = 0.0
    abs_tol: float = 0.0
    limits: Limits | None = None

    def to_wire(self, default_limits: Limits) -> dict:
        """The JSON the worker receives; raises ValueError for values that are not plain data."""
        if type(self.code) is not str:
            raise ValueError("Job.code must be a str")
        if self.func is not None and not (type(self.func) is str and self.func.isidentifier()):
            raise ValueError(f"Job.func must be an identifier, got {self.func!r}")
        if self.args_text is not None and (self.args or self.kwargs):
            raise ValueError("give either args/kwargs or args_text, not both")
        if self.expected is not UNSET and self.expected_text is not None:
            raise ValueError("give either expected or expected_text, not both")
        wire = {
            "code": self.code,
            "func": self.func,
            "args": values.to_canonical(tuple(self.args))["tuple"],
            "kwargs": {str(k): values.to_canonical(v) for k, v in dict(self.kwargs).items()},
            "args_text": self.args_text,
            "rel_tol": float(self.rel_tol),
            "abs_tol": float(self.abs_tol),
            "limits": (self.limits or default_limits).to_dict(),
        }
        if self.expected is not UNSET:
            wire["expected"] = values.to_canonical(self.expected)
        if self.expected_text is not None:
            wire["expected_text"] = str(self.expected_text)
        return wire


@dataclass
class Result:
    """Outcome of one job. `value` is the canonical (tagged JSON) form; `python_value()` decodes it.

    status: ok | error | timeout | memory | killed | output_limit. `match` is None when the job
    carried no expected value (or did not finish with ok).
    """

    status: str
    value: Any = None
    match: bool | None = None
    error_type: str | None = None
    error: str | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    wall_time: float = 0.0
    cpu_time: float = 0.0
    mode: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def python_value(self) -> Any:
        return values.from_canonical(self.value)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, mode: str = "") -> "Result":
        """Validate a worker's answer field by field (it is data from another process)."""
        if type(data) is not dict or data.get("status") not in STATUSES:
            raise ValueError("malformed result")
        checks = {
            "match": (bool, type(None)), "error_type": (str, type(None)), "error": (str, type(None)),
            "stdout": (str,), "stderr": (str,), "stdout_truncated": (bool,), "stderr_truncated": (bool,),
            "wall_time": (float, int), "cpu_time": (float, int),
        }
        for key, types in checks.items():
            if key in data and type(data[key]) not in types:
                raise ValueError(f"malformed result field {key}")
        values.from_canonical(data.get("value"))
        known = {k: data[k] for k in checks.keys() | {"status", "value"} if k in data}
        return cls(**known, mode=mode)
