"""`choice`: the option letter in the answer (rlpretrain.eval.extract.choice_letter) equals the gold letter."""

from __future__ import annotations

from rlpretrain.eval.benchmarks.base import GRADERS, Example, Grader
from rlpretrain.eval.extract import choice_letter


@GRADERS.register("choice")
class ChoiceGrader(Grader):
    name = "choice"
    version = "1"

    def grade_batch(self, answers: list[str | None], examples: list[Example]) -> list[float]:
        out = []
        for a, ex in zip(answers, examples, strict=True):
            letter = None if a is None else choice_letter(a)
            out.append(float(letter is not None and letter == str(ex.answer).strip().upper()))
        return out
