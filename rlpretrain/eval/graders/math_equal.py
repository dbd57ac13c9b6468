"""`math_equal`: the Qwen2.5-Math evaluation's equivalence rules (used by Absolute Zero's math
numbers), written here from their description, not copied:

1. the normalised strings are equal (case-insensitive);
2. both are numbers: equal within a relative 1e-4, the gold also accepted x100 and /100
   (a percentage written either way: "10%" vs "0.1");
3. both are tuples/intervals/lists of the same length: equal element by element;
4. equations: "x = 5" against "5" compares the right-hand side; two equations compare lhs - rhs;
5. otherwise both are parsed from latex into sympy (latex2sympy2_extended, a grammar, never eval)
   and are equal when sympy says so, their difference simplifies to 0, or their values agree.

Normalisation drops what does not change the value: ``\\left``/``\\right``, ``\\!``, spacing,
``\\text{...}`` units after a number, degrees, ``^\\circ``, a trailing period, "\\dfrac"/"\\tfrac",
"x=" in front of the answer, and spells ``\\frac12`` as ``\\frac{1}{2}``.
Symbolic steps run under a SIGALRM time limit in the main thread (sympy can take minutes).
"""

from __future__ import annotations

import math
import re
import signal
import threading
from contextlib import contextmanager

from rlpretrain.eval.benchmarks.base import GRADERS, Example, Grader

REL_TOL = 1e-4


@contextmanager
def _time_limit(seconds: float):
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def normalize(s: str) -> str:
    s = s.strip().replace("\n", "")
    s = s.rstrip(".").strip()
    s = re.sub(r"\\(?:left|right|!|,|;|:|quad|qquad)(?![a-zA-Z])", "", s)
    s = s.replace("\\displaystyle", "").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s).replace("°", "").replace("\\degree", "")
    s = s.replace("\\$", "").replace("$", "")
    s = re.sub(r"(\d)\s*\\(?:text|mbox|mathrm)\{\s*[a-zA-Z][a-zA-Z ]*\}$", r"\1", s)  # "5 \text{ cm}" -> "5"
    s = re.sub(r"\\(?:text|mbox|mathrm)\{(.*?)\}", r"\1", s)
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\{([^{}]*)\}(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac(\d)\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)
    s = re.sub(r"^[a-zA-Z]\s*=\s*(?=[^=]+$)", "", s)  # "x = 5" -> "5"
    s = s.replace(" ", "")
    s = re.sub(r"(?<![\d.])\.(\d)", r"0.\1", s)  # ".5" -> "0.5"
    return s


def _number(s: str) -> float | None:
    t = s.replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?%?", s.replace("\\%", "%")) else s
    t = t.replace("\\%", "%")
    scale = 1.0
    if t.endswith("%"):
        t, scale = t[:-1], 0.01
    try:
        return float(t) * scale
    except ValueError:
        m = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(\d+)\}", t)
        if m and int(m.group(3)):
            return (-1 if m.group(1) else 1) * int(m.group(2)) / int(m.group(3)) * scale
        return None


def _parts(s: str) -> list[str] | None:
    """The elements of "(a, b)" / "[a, b)" / "\\{a, b\\}" / "a, b", split at top-level commas."""
    body = s
    if len(s) >= 2 and s[0] in "([{" and s[-1] in ")]}":
        body = s[1:-1]
    elif s.startswith("\\{") and s.endswith("\\}"):
        body = s[2:-2]
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts if len(parts) > 1 else None


def _ends(s: str) -> str | None:
    return s[0] + s[-1] if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" else None


def _sympy(s: str):
    from latex2sympy2_extended import latex2sympy

    return latex2sympy(s)


def _symbolic_equal(a: str, b: str, timeout: float) -> bool:
    import sympy

    try:
        with _time_limit(timeout):
            x, y = _sympy(a), _sympy(b)
            if x == y:
                return True
            if isinstance(x, sympy.Eq) and isinstance(y, sympy.Eq):
                dx, dy = x.lhs - x.rhs, y.lhs - y.rhs
                return sympy.simplify(dx - dy) == 0 or sympy.simplify(dx + dy) == 0
            if sympy.simplify(x - y) == 0:
                return True
            return math.isclose(float(sympy.N(x)), float(sympy.N(y)), rel_tol=REL_TOL)
    except Exception:  # unparsable, not comparable, or out of time: not shown equal
        return False


def math_equal(prediction: str | None, reference: str, include_percentage: bool = True, timeout: float = 5.0) -> bool:
    if prediction is None:
        return False
    p, r = normalize(prediction), normalize(str(reference))
    if not p:
        return False
    if p.lower() == r.lower():
        return True
    pn, rn = _number(p), _number(r)
    if pn is not None and rn is not None:
        candidates = [rn, rn / 100, rn * 100] if include_percentage else [rn]
        return any(math.isclose(pn, c, rel_tol=REL_TOL) for c in candidates)
    pp, rp = _parts(p), _parts(r)
    if pp is not None and rp is not None:
        ep, er = _ends(p), _ends(r)
        if len(pp) != len(rp) or (ep and er and ep != er and {ep, er} - {"()", "[]"}):
            return False  # a half-open interval's ends matter; a tuple written () or [] does not
        return all(math_equal(x, y, include_percentage, timeout) for x, y in zip(pp, rp))
    return _symbolic_equal(p, r, timeout)


@GRADERS.register("math_equal")
class MathEqualGrader(Grader):
    name = "math_equal"
    version = "1"

    def __init__(self, timeout: float = 5.0):
        self.timeout = timeout

    def grade_batch(self, answers: list[str | None], examples: list[Example]) -> list[float]:
        return [float(math_equal(a, str(ex.answer), timeout=self.timeout)) for a, ex in zip(answers, examples, strict=True)]
