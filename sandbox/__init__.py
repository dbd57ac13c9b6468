"""Isolated execution of untrusted (model-written) Python: see sandbox/README.md.

    from rlpretrain.sandbox import Job, SandboxPool
    with SandboxPool() as pool:
        result = pool.run(Job("def f(x): return x * 2", args=(3,), expected=6))
        assert result.status == "ok" and result.match
"""

import importlib

# Names are resolved on first use (PEP 562) so that the worker, which imports `sandbox.worker`,
# does not load the host side (threading, subprocess, logging): every module in the worker makes
# each per-job fork slower.
_EXPORTS = {
    "MODES": "isolation", "SandboxError": "isolation", "SandboxWarning": "isolation",
    "missing_protections": "isolation",
    "STATUSES": "jobs", "UNSET": "jobs", "Job": "jobs", "Result": "jobs",
    "Limits": "limits",
    "SandboxPool": "pool", "arun_batch": "pool", "default_pool": "pool", "run": "pool", "run_batch": "pool",
    "UnsupportedValue": "values", "equal": "values", "from_canonical": "values", "parse_args": "values",
    "parse_call": "values", "to_canonical": "values",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__():
    return __all__
