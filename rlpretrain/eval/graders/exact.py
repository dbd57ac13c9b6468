"""`exact`: the normalised answer equals the normalised gold. Numbers compare by value ("18",
"18.00", "$18", "1,8" is not a number); yes/no answers accept true/false (BoolQ)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from rlpretrain.eval.benchmarks.base import GRADERS, Example, Grader

_BOOL = {"true": "yes", "false": "no"}


def normalize(text: str) -> str:
    s = text.strip().strip("$").strip()
    s = re.sub(r"^\\text\{(.*)\}$", r"\1", s)
    s = s.rstrip(".").strip().lower()
    number = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s).lstrip("$")
    try:
        value = Decimal(number)
    except InvalidOperation:
        return _BOOL.get(s, s)
    return format(value.normalize(), "f") if value == value.to_integral() else str(value.normalize())


@GRADERS.register("exact")
class ExactGrader(Grader):
    name = "exact"
    version = "1"

    def grade_batch(self, answers: list[str | None], examples: list[Example]) -> list[float]:
        return [0.0 if a is None else float(normalize(a) == normalize(str(ex.answer)))
                for a, ex in zip(answers, examples, strict=True)]
