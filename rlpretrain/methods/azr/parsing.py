"""Reading a response: the R1 template (<think>…</think><answer>…</answer>) and the fenced blocks
inside the answer (```python, ```input, ```output, ```message). Only text is extracted here; nothing
is evaluated (inputs and outputs are parsed as literals inside the sandbox)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# The prompt ends with "<think>", so the response is the rest of it (AZR's format check, as R1's).
_R1 = re.compile(r"\s*(.*?)</think>\s*<answer>(.*?)</answer>", re.DOTALL)
_BLOCK = {lang: re.compile(rf"```{lang}[ \t]*\n(.*?)```", re.DOTALL) for lang in ("python", "input", "output", "message")}


def answer_text(response: str, think: bool = True) -> str | None:
    """The answer of a well-formed response, None on a format error. think=False: the whole response."""
    if not think:
        return response
    m = _R1.match(response)
    return m.group(2) if m else None


def blocks(text: str, lang: str) -> list[str]:
    """Every ```lang block's content, stripped, in order."""
    return [b.strip() for b in _BLOCK[lang].findall(text)]


def last_block(text: str, lang: str) -> str | None:
    found = blocks(text, lang)
    return found[-1] if found and found[-1] else None


@dataclass
class Proposal:
    """What a proposer response gave: deduction/abduction a program and an input; induction inputs
    and a message. `well_formed` is False on a format error (the R1 shape or a required block)."""
    well_formed: bool
    program: str = ""
    input: str = ""
    inputs: tuple[str, ...] = ()
    message: str = ""


def parse_proposal(task_type: str, response: str, think: bool = True, max_inputs: int = 10) -> Proposal:
    answer = answer_text(response, think)
    if answer is None:
        return Proposal(False)
    if task_type == "induction":
        inputs = tuple(dict.fromkeys(b for b in blocks(answer, "input") if b))[:max_inputs]  # distinct, in order
        messages = blocks(answer, "message")  # required, but it may be empty: the prompt makes it optional help
        return Proposal(bool(inputs) and bool(messages), inputs=inputs, message=messages[-1] if messages else "")
    program, inp = last_block(answer, "python"), last_block(answer, "input")
    return Proposal(program is not None and inp is not None, program=program or "", input=inp or "")


SOLUTION_BLOCK = {"deduction": "output", "abduction": "input", "induction": "python"}


def proposal_blocks(task_type: str, n_inputs: int) -> tuple[str, ...]:
    """The blocks a proposal holds, in the order the prompt asks for them."""
    return ("input",) * n_inputs + ("message",) if task_type == "induction" else ("python", "input")


def opened_block(lang: str) -> str:
    """The opening fence that `method.scaffold_blocks` writes before each block."""
    return f"```{lang}\n"


def parse_solution(task_type: str, response: str, think: bool = True) -> str | None:
    """The solver's answer block (output / input / program), None on a format error."""
    answer = answer_text(response, think)
    return None if answer is None else last_block(answer, SOLUTION_BLOCK[task_type])
