"""Is a proposal a valid task? Decided only by running it in the sandbox (AZR §3.3):

- it passes the banned-module check (ast_checks.py);
- the program runs on the proposed input and returns a plain value (the sandbox rejects objects of
  user-defined types, so an always-equal object is never a task's output);
- it is deterministic: `runs` executions in separate processes give the same value. The later runs
  start from a different heap (a few extra live objects), so results that depend on object
  addresses (`id`, default hashes and reprs) differ as they would on another machine; jobs of one
  warm worker would otherwise often see the same addresses.

Helper functions and classes before `f` are allowed (the official code rejects them).
"""

from __future__ import annotations

from dataclasses import dataclass

from rlpretrain.sandbox import Job, Result
from rlpretrain.sandbox.values import canonical_text

from rlpretrain.methods.azr.ast_checks import violations
from rlpretrain.methods.azr.executor import Executor, JobBatch
from rlpretrain.methods.azr.parsing import Proposal
from rlpretrain.methods.azr.tasks import Task

HEAP_SHIFT = "_azr_heap_shift = [object() for _ in range({n})]\n"


def run_jobs(program: str, args_text: str, runs: int) -> list[Job]:
    return [Job(program if r == 0 else HEAP_SHIFT.format(n=64 * r) + program, args_text=args_text)
            for r in range(runs)]


def deterministic_value(results: list[Result]) -> tuple[object, str]:
    """(canonical value, "") when every run returned the same plain value, else (None, why not)."""
    if not results:
        return None, "not run"
    failed = next((r for r in results if not r.ok), None)
    if failed is not None:
        return None, failed.error_type or failed.status
    if len({canonical_text(r.value) for r in results}) > 1:
        return None, "nondeterministic"
    return results[0].value, ""


@dataclass
class Validated:
    valid: bool
    reason: str  # "" when valid; else format | banned: ... | the error type | nondeterministic | ...
    task: Task | None = None


def validate(executor: Executor, items: list[tuple[str, Proposal, str]], runs: int,
             banned_modules, min_induction_pairs: int = 2) -> list[Validated]:
    """Validate (task type, proposal, induction program) triples with one sandbox batch."""
    batch = JobBatch()
    early: dict[int, Validated] = {}
    for k, (task_type, prop, program) in enumerate(items):
        if not prop.well_formed:
            early[k] = Validated(False, "format")
            continue
        code = program if task_type == "induction" else prop.program
        problems = violations(code, banned_modules)
        if problems:
            early[k] = Validated(False, "banned: " + "; ".join(problems))
            continue
        for i, args in enumerate(prop.inputs if task_type == "induction" else (prop.input,)):
            for job in run_jobs(code, args, runs):
                batch.add((k, i), job)
    results = executor.run(batch)
    out = []
    for k, (task_type, prop, program) in enumerate(items):
        if k in early:
            out.append(early[k])
        elif task_type == "induction":
            pairs = [(args, value) for i, args in enumerate(prop.inputs)
                     for value, why in [deterministic_value(results[(k, i)])] if not why]
            if len(pairs) < min_induction_pairs:
                out.append(Validated(False, f"{len(pairs)} valid input(s), fewer than {min_induction_pairs}"))
            else:
                out.append(Validated(True, "", Task("induction", program, inputs=tuple(a for a, _ in pairs),
                                                    outputs=tuple(v for _, v in pairs), message=prop.message,
                                                    visible=len(pairs) // 2)))
        else:
            value, why = deterministic_value(results[(k, 0)])
            out.append(Validated(not why, why, Task(task_type, prop.program, prop.input, value) if not why else None))
    return out
