"""Multiple-choice benchmarks: one base (`ChoiceBenchmark`), one subclass per dataset saying where
the question, the options and the gold letter are. Graded by `choice` (the option letter).

Templates:
- `plain`: "Question: ...", the options "A. ...", then "Answer:" (raw text, zero-shot)
- `nemo`: the simple-evals multiple-choice query NeMo-Skills uses for RLP's science numbers: think
  step by step, last line "Answer: X" (a chat user message)
- `cot` (MMLU, MMLU-Pro): MMLU-Pro's chain-of-thought few-shot format (TIGER-Lab's evaluation
  script): a header per subject, solved examples of the same subject, "Answer: Let's think step by
  step." (TPT: 2-shot). MMLU-Pro's shots carry their `cot_content`; MMLU's dev split has no
  rationales, so its shots end "The answer is (X)." directly.
BoolQ is yes/no rather than lettered, graded by `exact` (its own small class below).
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

from rlpretrain.eval.benchmarks.base import BENCHMARKS, DatasetSpec, Example, Messages
from rlpretrain.eval.benchmarks.dataset import DatasetBenchmark
from rlpretrain.eval.extract import LETTERS, choice_letter

# openai/simple-evals common.py QUERY_TEMPLATE_MULTICHOICE (NeMo-Skills' mcq prompts follow it), with
# the letter list as long as the options.
NEMO_CHOICE = ("Answer the following multiple choice question. The last line of your response should be of the "
               "following format: 'Answer: $LETTER' (without quotes) where LETTER is one of {letters}. Think step "
               "by step before answering.\n\n{question}\n\n{options}")
# TIGER-Lab/MMLU-Pro evaluate_from_local.py: the CoT prompt's header and answer cue
COT_HEADER = ("The following are multiple choice questions (with answers) about {subject}. Think step by step and "
              "then finish your answer with \"the answer is (X)\" where X is the correct letter choice.")
COT_CUE = "Answer: Let's think step by step."


class ChoiceBenchmark(DatasetBenchmark):
    grader = "choice"
    templates: tuple[str, ...] = ("plain", "nemo")

    def options(self, example: Example, sep: str = ". ") -> str:
        return "\n".join(f"{LETTERS[i]}{sep}{c}" for i, c in enumerate(example.meta["choices"]))

    def fewshot_group(self, example: Example) -> Any:
        return example.meta.get("subject")

    def shot_rationale(self, example: Example) -> str:
        return f"Answer: The answer is ({example.answer})."

    def prompt(self, example: Example, template: str, shots: int) -> str | Messages:
        self.check_template(template, shots, max_shots=None if template == "cot" else 0)
        if template == "plain":
            return f"Question: {example.question}\n{self.options(example)}\nAnswer:"
        if template == "nemo":
            letters = LETTERS[:len(example.meta["choices"])]
            return [{"role": "user", "content": NEMO_CHOICE.format(
                letters="".join(letters), question=example.question, options=self.options(example, ") "))}]
        subject = str(example.meta.get("subject") or "").replace("_", " ")
        blocks = [COT_HEADER.format(subject=subject)]
        for e in self.fewshot(example, shots):
            blocks.append(f"Question:\n{e.question}\nOptions:\n{self.options(e)}\n{self.shot_rationale(e)}")
        blocks.append(f"Question:\n{example.question}\nOptions:\n{self.options(example)}\n{COT_CUE}")
        return "\n\n".join(blocks)

    def stop(self, template: str) -> list[str]:
        return ["\n\nQuestion:"] if template == "cot" else []

    def extract(self, completion: str, template: str | None = None) -> str | None:
        found = choice_letter(completion)
        if found is None and (template or self.default_template) == "plain":
            # the prompt ends "Answer:", so a base model's completion starts with the letter
            m = re.match(rf"\s*\(?([{LETTERS}])\)?(?:[.):\s]|$)", completion)
            found = m.group(1) if m else None
        return found


@BENCHMARKS.register("mmlu")
class MMLU(ChoiceBenchmark):
    name = "mmlu"
    dataset = DatasetSpec("cais/mmlu", "all", split="test", fewshot_split="dev")
    templates = ("plain", "nemo", "cot")

    def to_example(self, row, index):
        return Example(id=str(index), question=row["question"], answer=LETTERS[int(row["answer"])],
                       meta={"choices": list(row["choices"]), "subject": row["subject"]})


@BENCHMARKS.register("mmlu_pro")
class MMLUPro(ChoiceBenchmark):
    name = "mmlu_pro"
    dataset = DatasetSpec("TIGER-Lab/MMLU-Pro", None, split="test", fewshot_split="validation")
    templates = ("plain", "nemo", "cot")

    def to_example(self, row, index):
        # some questions have fewer than ten options; MMLU-Pro pads none, so letters follow the list
        return Example(id=str(row["question_id"]), question=row["question"], answer=row["answer"],
                       meta={"choices": list(row["options"]), "subject": row["category"],
                             "cot": row.get("cot_content") or ""})

    def shot_rationale(self, example):
        cot = example.meta["cot"].strip()
        cot = re.sub(r"^A:\s*", "", cot)  # MMLU-Pro's cot_content starts "A: Let's think step by step."
        return f"Answer: {cot}" if cot else f"Answer: The answer is ({example.answer})."


@BENCHMARKS.register("gpqa_diamond")
class GPQADiamond(ChoiceBenchmark):
    """GPQA-Diamond (198, gated on the hub). The dataset lists the correct answer apart from the three
    wrong ones; the four are put in an order fixed by the record id (seeded shuffle), so the gold
    letter is the same on every machine and run."""
    name = "gpqa_diamond"
    dataset = DatasetSpec("Idavidrein/gpqa", "gpqa_diamond", split="train")

    def to_example(self, row, index):
        rid = str(row.get("Record ID", index))
        options = [row["Correct Answer"], row["Incorrect Answer 1"], row["Incorrect Answer 2"], row["Incorrect Answer 3"]]
        order = list(range(4))
        random.Random(int(hashlib.sha256(rid.encode()).hexdigest(), 16)).shuffle(order)
        choices = [str(options[i]).strip() for i in order]
        return Example(id=rid, question=str(row["Question"]).strip(), answer=LETTERS[order.index(0)],
                       meta={"choices": choices, "subject": row.get("High-level domain")})


@BENCHMARKS.register("supergpqa")
class SuperGPQA(ChoiceBenchmark):
    name = "supergpqa"
    dataset = DatasetSpec("m-a-p/SuperGPQA", None, split="train")

    def to_example(self, row, index):
        return Example(id=str(row["uuid"]), question=row["question"], answer=row["answer_letter"],
                       meta={"choices": list(row["options"]), "subject": row.get("discipline"),
                             "field": row.get("field"), "difficulty": row.get("difficulty")})


@BENCHMARKS.register("boolq")
class BoolQ(DatasetBenchmark):
    """BoolQ (SuperGLUE validation, 3,270): a passage and a yes/no question; gold "yes"/"no"."""
    name = "boolq"
    dataset = DatasetSpec("aps/super_glue", "boolq", split="validation", fewshot_split="train")
    grader = "exact"
    templates = ("plain",)

    def to_example(self, row, index):
        return Example(id=str(row.get("idx", index)), question=row["question"],
                       answer="yes" if int(row["label"]) == 1 else "no", meta={"passage": row["passage"]})

    def prompt(self, example, template, shots):
        # lm-evaluation-harness' boolq format: passage, "Question: ...?", "Answer:" (TPT: 0-shot)
        self.check_template(template, shots, max_shots=None)
        blocks = [f"{e.meta['passage']}\nQuestion: {e.question}?\nAnswer: {e.answer}" for e in self.fewshot(example, shots)]
        return "\n\n".join(blocks + [f"{example.meta['passage']}\nQuestion: {example.question}?\nAnswer:"])

    def stop(self, template):
        return ["\n\n"]

    def extract(self, completion, template=None):
        m = re.search(r"\b(yes|no|true|false)\b", completion, re.IGNORECASE)
        return m.group(1).lower() if m else None
