"""`math_verify`: Hugging Face's math-verify (the grader NeMo-Skills uses for RLP's math numbers).

Both the gold and the extracted answer are parsed as the content of a ``\\boxed{}`` (latex first,
then a plain expression), and math_verify.verify decides equivalence (gold first: it is not
symmetric). Its timeouts use SIGALRM, which only the main thread may set; elsewhere they are off.
"""

from __future__ import annotations

import threading
from importlib.metadata import version

from rlpretrain.eval.benchmarks.base import GRADERS, Example, Grader


def _parse(text: str, timeout: int | None):
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    return parse(f"\\boxed{{{text}}}", extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()],
                 parsing_timeout=timeout)


def math_verify_equal(answer: str | None, gold: str, timeout: int = 5) -> bool:
    from math_verify import verify

    if answer is None or not answer.strip():
        return False
    t = timeout if threading.current_thread() is threading.main_thread() else None
    target, ref = _parse(answer, t), _parse(gold, t)
    return bool(target and ref and verify(ref, target, timeout_seconds=t))


@GRADERS.register("math_verify")
class MathVerifyGrader(Grader):
    name = "math_verify"

    def __init__(self, timeout: int = 5):
        self.timeout = timeout
        self.version = f"math-verify=={version('math-verify')}"

    def grade_batch(self, answers: list[str | None], examples: list[Example]) -> list[float]:
        return [float(math_verify_equal(a, str(ex.answer), self.timeout)) for a, ex in zip(answers, examples, strict=True)]
