"""Answer extraction from generated text, shared by the benchmarks and the graders. Each returns None
when the text holds no answer of its kind (a missing answer is scored as wrong, never guessed)."""

from __future__ import annotations

import re

BOX = "\\boxed"
LETTERS = "ABCDEFGHIJ"  # up to ten options (MMLU-Pro, SuperGPQA)


def _braced(text: str, open_at: int) -> tuple[str, int] | None:
    """The content of the brace group opening at text[open_at] == "{", and the index after it."""
    depth, j = 0, open_at
    while j < len(text):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1:j], j + 1
        j += 1
    return None  # unclosed: a truncated generation


def last_boxed(text: str) -> str | None:
    """The content of the last complete ``\\boxed{...}`` (nested braces matched; ``\\boxed 5`` too,
    as Minerva-style solutions sometimes write it); None when there is none or it is unclosed."""
    found: str | None = None
    i = text.find(BOX)
    while i >= 0:
        j = i + len(BOX)
        if text.startswith("{", j):
            got = _braced(text, j)
            if got is None:
                return None
            found, j = got
        elif text.startswith(" ", j):
            m = re.match(r" +([^\s$]+)", text[j:])
            if m:
                found, j = m.group(1), j + m.end()
        i = text.find(BOX, j)
    return found.strip() if found is not None else None


def tagged(text: str, tag: str) -> str | None:
    """The content of the last <tag>...</tag> (an unclosed last tag runs to the end of the text)."""
    start = text.rfind(f"<{tag}>")
    if start < 0:
        return None
    body = text[start + len(tag) + 2:]
    end = body.find(f"</{tag}>")
    return (body if end < 0 else body[:end]).strip()


_NUMBER = r"-?[$]?\d[\d,]*(?:\.\d+)?|-?\.\d+"


def last_number(text: str) -> str | None:
    """The last number in the text, without thousands separators or a currency sign ("1,234.5" -> "1234.5")."""
    found = re.findall(_NUMBER, text)
    if not found:
        return None
    return found[-1].replace(",", "").replace("$", "").rstrip(".")


def final_answer_phrase(text: str) -> str | None:
    """What follows the last "The final answer is" / "The answer is" (Minerva and few-shot CoT
    endings), up to the end of its sentence; ``$...$`` around it removed."""
    found = re.findall(r"[Tt]he (?:final )?answer is:?\s*(.+?)(?:\.\s|\.?$|\n|\. I hope)", text)
    if not found:
        return None
    ans = found[-1].strip()
    if len(ans) > 1 and ans.startswith("$") and ans.endswith("$"):
        ans = ans.strip("$").strip()
    return ans or None


_LETTER = f"[{LETTERS}]"
_CHOICE_PATTERNS = [  # the letter itself is upper case: "the answer is a bit unclear" has none
    # "the answer is (B)", "The correct answer is B", "answer is: **C**"
    re.compile(rf"(?i:answer is):?\s*\**\s*\(?({_LETTER})\)?(?![A-Za-z])"),
    # an "Answer: B" line (NeMo-Skills / simple-evals)
    re.compile(rf"(?m)^\s*\**(?i:answer)\**\s*:\s*\**\s*\(?({_LETTER})\)?(?![A-Za-z])"),
]


def choice_letter(text: str) -> str | None:
    """The chosen option letter: from the last ``\\boxed{X}``, else the last "the answer is (X)",
    else the last "Answer: X" line; a bare "X", "(X)" or "X." is taken as it is. Upper case."""
    bare = re.fullmatch(rf"\s*\(?({_LETTER})\)?[.:]?\s*", text, re.IGNORECASE)
    if bare:
        return bare.group(1).upper()
    boxed = last_boxed(text)
    if boxed is not None:
        m = re.fullmatch(rf"\s*(?:\\text\{{)?\(?({_LETTER})\)?\}}?\s*", boxed, re.IGNORECASE)
        if m:
            return m.group(1).upper()
    for pattern in _CHOICE_PATTERNS:
        found = pattern.findall(text)
        if found:
            return found[-1]
    return None


def code_block(text: str) -> str | None:
    """The last fenced code block (```python ... ``` or ``` ... ```); an unclosed last fence runs
    to the end of the text. None when there is no fence."""
    blocks = re.findall(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", text, re.DOTALL)
    return blocks[-1] if blocks else None
