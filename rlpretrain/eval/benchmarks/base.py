"""The benchmark interface: where the examples come from, how a prompt is built, how an answer is
extracted and which grader scores it. One registry (`BENCHMARKS`); suites (conf/eval/) name them.

    bench = BENCHMARKS.get("gsm8k")()
    examples = bench.load(local_path=None, limit=None)        # datasets.load_dataset, or a local file
    prompt = bench.prompt(examples[0], template="fewshot", shots=5)   # str, or chat messages
    answer = bench.extract(completion_text, "fewshot")         # str | None (None: no answer, scored 0)
    scores = GRADERS.get(bench.grader)().grade_batch([answer, ...], [example, ...])   # floats in [0, 1]

Benchmarks of token positions (RPT's `next_token`) also use the evaluated model's tokenizer
(`use_tokenizer`, called before `load`), may give a prompt as token ids, read the answer from the
completion's token ids (`extract_sample`) and grade each template with its own grader (`grader_for`).

Also: `bench.templates` (the template names `prompt` accepts), `bench.stop(template)` (stop strings
for the engine: a few-shot prompt's next "Question:"), `bench.load_fewshot(local_path)` (where the
few-shot examples come from on a machine without the hub; otherwise `dataset.fewshot_split`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from rlpretrain.registry import Registry

BENCHMARKS: Registry = Registry("benchmark")
GRADERS: Registry = Registry("grader")

Messages = list[dict[str, str]]  # [{"role": "user", "content": ...}, ...]
TokenIds = list[int]  # a prompt given as the model's token ids, sent as they are


@dataclass(frozen=True)
class DatasetSpec:
    hf_id: str  # e.g. "openai/gsm8k"
    config: str | None = None  # e.g. "main"
    split: str = "test"
    fewshot_split: str | None = None  # where few-shot examples come from (e.g. "train", "validation")


@dataclass
class Example:
    id: str  # stable across runs: a resumed evaluation finds its samples by (benchmark, id, sample index)
    question: str  # what the prompt asks (problem text, question, or function signature + docstring)
    answer: Any  # the gold value the grader compares with (a string, a letter, a bool ...)
    meta: dict[str, Any] = field(default_factory=dict)  # choices, tests, entry_point, subject, source ...


class Benchmark(ABC):
    name: str
    dataset: DatasetSpec
    grader: str  # a name in GRADERS
    default_template: str = "plain"
    default_shots: int = 0
    templates: tuple[str, ...] = ("plain",)  # the names `prompt` accepts; the first few are the papers'
    # generation ends at any of these (e.g. HumanEval's "\ndef "), beside EOS: the default template's;
    # `stop(template)` gives them for any template
    stop_strings: tuple[str, ...] = ()

    @abstractmethod
    def load(self, local_path: str | None = None, limit: int | None = None) -> list[Example]:
        """The evaluation examples, in a fixed order: from the hub (`datasets.load_dataset`), or from
        `local_path` (a json/jsonl/parquet file in the dataset's own schema) on machines without it."""

    @abstractmethod
    def prompt(self, example: Example, template: str, shots: int) -> str | Messages | TokenIds:
        """The prompt for one example; `template` names one of the benchmark's templates (the papers'),
        `shots` the number of few-shot examples prepended. A str is sent as it is (no chat template);
        messages go through the model's chat template, and when the last one is the assistant's, the
        generation continues it (a prefilled answer start, as evalplus' instruct prompts do); token
        ids are sent as they are (a document's exact tokens, which decoding and encoding may change)."""

    @abstractmethod
    def extract(self, completion: str, template: str | None = None) -> str | None:
        """The answer in a completion, or None when there is none (scored as wrong). `template` is the
        one the prompt was built with (None: `default_template`): AZR's answers sit in <answer> tags,
        a Minerva few-shot answer after "The final answer is", a boxed template's in \\boxed{}."""

    def stop(self, template: str) -> list[str]:
        """Strings that end a generation for this template, beside EOS (by default `stop_strings`)."""
        return list(self.stop_strings)

    def use_tokenizer(self, tokenizer) -> None:
        """The evaluated model's tokenizer, given before `load`: benchmarks whose examples are token
        positions need it; others ignore it."""

    def grader_for(self, template: str) -> str:
        """The grader of answers to this template (by default `grader`, whatever the template)."""
        return self.grader

    def extract_sample(self, completion: str, token_ids: list[int], template: str | None = None) -> str | None:
        """The answer from a sample's text and token ids; by default from its text (`extract`)."""
        return self.extract(completion, template)

    def load_fewshot(self, local_path: str | None = None) -> list[Example]:
        """The pool few-shot examples are drawn from (`dataset.fewshot_split`, or `local_path`); kept
        for later `prompt(..., shots>0)` calls. Benchmarks without few-shot prompts have none."""
        raise ValueError(f"benchmark '{self.name}' has no few-shot examples")


class Grader(ABC):
    name: str
    version: str  # recorded in results.json: scores move with the grader

    @abstractmethod
    def grade_batch(self, answers: list[str | None], examples: list[Example]) -> list[float]:
        """A score in [0, 1] per answer (None scores 0); batched so code graders use the sandbox pool once."""
