"""Math benchmarks with a single final answer: one base (`MathBenchmark`), one small subclass per
dataset saying where its question and gold answer are.

Templates (every math benchmark has the zero-shot ones; few-shot ones where a paper uses them):
- `plain`: the problem, then "Please reason step by step, and put your final answer within \\boxed{}." (raw text)
- `nemo`: NeMo-Skills' generic math prompt (RLP), a chat user message
- `qwen-boxed`: the Qwen2.5-Math evaluation's template, used by Absolute Zero for base models (raw ChatML)
- `azr`, `azr_boxed`: Absolute Zero's own templates (answer in <answer> tags; the `_boxed` one asks for \\boxed{})
- `fewshot` (GSM8K): "Question: ...\\nAnswer: ..." shots from the train split (TPT: 5-shot)
- `minerva` (MATH): the four fixed Minerva exemplars (Lewkowycz et al. 2022), "Problem:/Solution:" (TPT: 4-shot)
"""

from __future__ import annotations

import re
from typing import Any

from rlpretrain.eval.benchmarks.base import BENCHMARKS, DatasetSpec, Example, Messages
from rlpretrain.eval.benchmarks.dataset import DatasetBenchmark
from rlpretrain.eval.extract import final_answer_phrase, last_boxed, last_number, tagged

BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
# NeMo-Skills nemo_skills/prompt/config/generic/math.yaml (the user message; no system message)
NEMO_MATH = "Solve the following math problem. Make sure to put the answer (and only answer) inside \\boxed{{}}.\n\n{problem}"
# Qwen2.5-Math evaluation/utils.py PROMPT_TEMPLATES["qwen-boxed"]; AZR's issue #27: base models use it
QWEN_BOXED = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{problem}\n"
              + BOXED_INSTRUCTION.replace("{}", "{{}}") + "<|im_end|>\n<|im_start|>assistant\n")
# LeapLabTHU/Absolute-Zero-Reasoner evaluation/math_eval/eval/utils.py PROMPT_TEMPLATES["azr"], ["azr_boxed"]
AZR_HEAD = ("A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
             "The assistant first thinks about the reasoning process in the mind and then provides the user with "
             "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
             "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
             "</answer>.")
AZR = AZR_HEAD + " User: {problem}\nAssistant:"
AZR_BOXED = AZR_HEAD + " And your final answer will be extracted automatically by the \\boxed{{}} tag. User: {problem}\nAssistant:"

# The Minerva MATH exemplars (Lewkowycz et al. 2022, appendix; as in lm-evaluation-harness'
# minerva_math task): quoted because the protocol (TPT's "MATH 4-shot") is defined by them.
MINERVA_SHOTS = [
    ("Find the domain of the expression  $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.}",
     "The expressions inside each square root must be non-negative. Therefore, $x-2 \\ge 0$, so $x\\ge2$, and $5 - x "
     "\\ge 0$, so $x \\le 5$. Also, the denominator cannot be equal to zero, so $5-x>0$, which gives $x<5$. Therefore, "
     "the domain of the expression is $\\boxed{[2,5)}$.\nFinal Answer: The final answer is $[2,5)$. I hope it is correct."),
    ("If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find $\\det (\\mathbf{A} \\mathbf{B}).$",
     "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) = (2)(12) = \\boxed{24}.$\n"
     "Final Answer: The final answer is $24$. I hope it is correct."),
    ("Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights instead, how many times "
     "must Terrell lift them in order to lift the same total weight?",
     "If Terrell lifts two 20-pound weights 12 times, he lifts a total of $2\\cdot 12\\cdot20=480$ pounds of weight.  "
     "If he lifts two 15-pound weights instead for $n$ times, he will lift a total of $2\\cdot15\\cdot n=30n$ pounds of "
     "weight.  Equating this to 480 pounds, we can solve for $n$:\n\\begin{align*}\n30n&=480\\\\\n\\Rightarrow\\qquad "
     "n&=480/30=\\boxed{16}\n\\end{align*}\nFinal Answer: The final answer is $16$. I hope it is correct."),
    ("If the system of equations\n\n\\begin{align*}\n6x-4y&=a,\\\\\n6y-9x &=b.\n\\end{align*}has a solution $(x, y)$ "
     "where $x$ and $y$ are both nonzero,\nfind $\\frac{a}{b},$ assuming $b$ is nonzero.",
     "If we multiply the first equation by $-\\frac{3}{2}$, we obtain\n\n$$6y-9x=-\\frac{3}{2}a.$$Since we also know "
     "that $6y-9x=b$, we have\n\n$$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}=\\boxed{-\\frac{2}{3}}.$$\n"
     "Final Answer: The final answer is $-\\frac{2}{3}$. I hope it is correct."),
]

ZERO_SHOT = ("plain", "nemo", "qwen-boxed", "azr", "azr_boxed")


def azr_answer(text: str) -> str | None:
    """Absolute Zero's extraction: the <answer> tag's content (its \\boxed{} when it has one), else
    the last \\boxed{}, else the last \\[...\\] display."""
    inside = tagged(text, "answer")
    if inside is not None:
        return last_boxed(inside) if "\\boxed" in inside else (inside or None)
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    displays = re.findall(r"\\\[(.*?)\\\]", text, re.DOTALL)
    return displays[-1].strip() if displays else None


class MathBenchmark(DatasetBenchmark):
    grader = "math_verify"
    templates = ZERO_SHOT
    question_keys: tuple[str, ...] = ("problem", "question")  # the first the row has
    answer_key = "answer"
    id_key: str | None = None  # a stable id column; else the row's index

    def question_of(self, row: dict[str, Any]) -> str:
        for key in self.question_keys:
            if key in row:
                return str(row[key])
        raise KeyError(f"benchmark '{self.name}': a row has none of the columns {self.question_keys}; it has {sorted(row)}")

    def gold(self, row: dict[str, Any]) -> str:
        value = row[self.answer_key]
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # AMC23 stores 55.0: the gold is "55"
        return str(value).strip()

    def to_example(self, row: dict[str, Any], index: int) -> Example:
        ex_id = str(row[self.id_key]) if self.id_key and self.id_key in row else str(index)
        return Example(id=ex_id, question=self.question_of(row), answer=self.gold(row),
                       meta={k: row[k] for k in ("subject", "level", "type", "category") if k in row})

    def shot_text(self, example: Example) -> str:
        """A solved example for a few-shot prompt (benchmarks with a `fewshot` template say how)."""
        raise NotImplementedError

    def prompt(self, example: Example, template: str, shots: int) -> str | Messages:
        self.check_template(template, shots, max_shots=None if template in ("fewshot", "minerva") else 0)
        q = example.question
        if template == "plain":
            return f"{q}\n{BOXED_INSTRUCTION}"
        if template == "nemo":
            return [{"role": "user", "content": NEMO_MATH.format(problem=q)}]
        if template == "qwen-boxed":
            return QWEN_BOXED.format(problem=q)
        if template == "azr":
            return AZR.format(problem=q)
        if template == "azr_boxed":
            return AZR_BOXED.format(problem=q)
        if template == "minerva":
            if shots > len(MINERVA_SHOTS):
                raise ValueError(f"the Minerva prompt has {len(MINERVA_SHOTS)} exemplars, {shots} shots asked")
            parts = [f"Problem:\n{p}\n\nSolution:\n{s}" for p, s in MINERVA_SHOTS[:shots]]
            return "\n\n".join(parts + [f"Problem:\n{q}\n\nSolution:"])
        # fewshot: "Question: ...\nAnswer: ..." blocks
        parts = [f"Question: {e.question}\nAnswer: {self.shot_text(e)}" for e in self.fewshot(example, shots)]
        return "\n\n".join(parts + [f"Question: {q}\nAnswer:"])

    def stop(self, template: str) -> list[str]:
        return {"fewshot": ["\n\nQuestion:", "Question:"], "minerva": ["\n\nProblem:", "Problem:"]}.get(template, [])

    def extract(self, completion: str, template: str | None = None) -> str | None:
        template = template or self.default_template
        if template in ("azr", "azr_boxed"):
            return azr_answer(completion)
        if template == "minerva":
            return final_answer_phrase(completion) or last_boxed(completion)
        if template == "fewshot":
            m = re.findall(r"####\s*(-?[$\d.,]+)", completion)
            if m:
                return m[-1].replace(",", "").replace("$", "").rstrip(".")
            return last_boxed(completion) or final_answer_phrase(completion) or last_number(completion)
        return last_boxed(completion)


def _register(name: str, spec: DatasetSpec, **attrs):
    """A MathBenchmark subclass for one dataset (column names, id column, few-shot template)."""
    cls = type(name.upper(), (MathBenchmark,), {"name": name, "dataset": spec, **attrs})
    return BENCHMARKS.register(name)(cls)


class GSM8K(MathBenchmark):
    name = "gsm8k"
    dataset = DatasetSpec("openai/gsm8k", "main", split="test", fewshot_split="train")
    templates = ZERO_SHOT + ("fewshot",)

    def gold(self, row):
        return row["answer"].split("####")[-1].strip().replace(",", "")

    def shot_text(self, example: Example) -> str:
        return example.meta["solution"]

    def to_example(self, row, index):
        ex = super().to_example(row, index)
        ex.meta["solution"] = row["answer"]  # the worked answer, "... #### 72": the few-shot text
        return ex


class MATH(MathBenchmark):
    """Hendrycks MATH, all seven subjects' test problems (5,000); the gold is the solution's last \\boxed{}."""
    name = "math"
    dataset = DatasetSpec("EleutherAI/hendrycks_math", None, split="test")
    subjects = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
                "prealgebra", "precalculus")
    templates = ZERO_SHOT + ("minerva",)
    default_template, default_shots = "minerva", 4

    def rows(self, split):
        from rlpretrain.eval.benchmarks.dataset import hub_rows

        return [r for s in self.subjects for r in hub_rows(DatasetSpec(self.dataset.hf_id, s), split)]

    def gold(self, row):
        return last_boxed(row["solution"]) or ""


BENCHMARKS.register("gsm8k")(GSM8K)
BENCHMARKS.register("math")(MATH)
_register("math500", DatasetSpec("HuggingFaceH4/MATH-500", split="test"), id_key="unique_id")
_register("aime24", DatasetSpec("HuggingFaceH4/aime_2024", split="train"), id_key="id")
_register("aime25", DatasetSpec("math-ai/aime25", split="test"), id_key="id")
_register("amc23", DatasetSpec("math-ai/amc23", split="test"), id_key="id")
# The 272 OCW problems of Minerva (Lewkowycz et al. 2022): not lm-eval's "minerva_math" (that is MATH).
_register("minerva_math", DatasetSpec("math-ai/minervamath", split="test"))


class OlympiadBench(MathBenchmark):
    """OlympiadBench's 675 open-ended, text-only, English competition math problems (OE_TO_maths_en_COMP)."""
    name = "olympiadbench"
    dataset = DatasetSpec("Hothan/OlympiadBench", "OE_TO_maths_en_COMP", split="train")
    id_key = "id"

    def gold(self, row):
        answers = row["final_answer"]
        return ", ".join(a.strip().strip("$").strip() for a in (answers if isinstance(answers, list) else [answers]))


BENCHMARKS.register("olympiadbench")(OlympiadBench)
