"""Is a solver's answer right? Checked in the sandbox with values as data, never spliced into code:

- deduction: the predicted output text is parsed as a literal inside the sandbox and compared with
  the gold value there, on plain builtin types (`sandbox.values.equal`), the whole value (no
  truncation);
- abduction: `f(i')` runs with the answer `i'` parsed as literal arguments (`3) or True or (3` is
  not literals, so it fails), and its value is compared with the gold output;
- induction: the solver's program (banned-module check first) runs on every hidden input and must
  return each gold output; a returned object of a user-defined type is rejected by the sandbox.

Nothing from the model is evaluated on the host.
"""

from __future__ import annotations

from rlpretrain.sandbox import Job
from rlpretrain.sandbox.values import from_canonical

from rlpretrain.methods.azr.ast_checks import violations
from rlpretrain.methods.azr.executor import Executor, JobBatch
from rlpretrain.methods.azr.tasks import Task

# Receives the gold value as data and returns it; the worker compares it with the answer's literal.
ECHO = "def f(gold):\n    return gold"


def add_check_jobs(batch: JobBatch, key, task: Task, answer: str | None, banned_modules) -> None:
    """Queue the jobs that decide `answer`; none when it cannot be right (missing, banned program)."""
    if answer is None:
        return
    if task.type == "deduction":
        batch.add(key, Job(ECHO, args=(from_canonical(task.output),), expected_text=answer))
    elif task.type == "abduction":
        batch.add(key, Job(task.program, args_text=answer, expected=from_canonical(task.output)))
    elif not violations(answer, banned_modules):
        for args, gold in task.hidden_pairs():
            batch.add(key, Job(answer, args_text=args, expected=from_canonical(gold)))


def correct(results: list, task: Task) -> bool:
    """All of an answer's jobs matched (induction: one per hidden pair; a missing answer has none)."""
    expected = len(task.hidden_pairs()) if task.type == "induction" else 1
    return len(results) == expected and all(r.ok and r.match is True for r in results)


def check_answers(executor: Executor, tasks: list[Task], answers: list[str | None], banned_modules) -> list[bool]:
    """Correctness of each (task, answer), with one sandbox batch."""
    batch = JobBatch()
    for k, (task, answer) in enumerate(zip(tasks, answers)):
        add_check_jobs(batch, k, task, answer, banned_modules)
    results = executor.run(batch)
    return [correct(results[k], task) for k, task in enumerate(tasks)]
