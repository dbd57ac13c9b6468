"""Data in and out of the sandbox: canonical JSON forms, strict comparison, literal-only parsing.

Everything here works on plain builtin types only. Code never reaches the host as text to
evaluate: values cross process boundaries as tagged JSON, and text from a model is parsed with
`ast` and accepted only when it is made of literals.
"""

from __future__ import annotations

import ast
import base64
import json
import math
from typing import Any

MAX_DEPTH = 100
# Ints beyond this are tagged: JSON readers in other languages lose precision, and CPython refuses
# to print ints of more than 4300 decimal digits (hex has no such limit).
_BIG_INT = 1 << 63
_TAGS = ("tuple", "set", "frozenset", "dict", "bytes", "int", "float")


class UnsupportedValue(ValueError):
    """A value that is not made of plain builtin types (or is nested too deeply / cyclic)."""


def to_canonical(value: Any, _depth: int = 0) -> Any:
    """Plain JSON form of a builtin value; tuple/set/dict/bytes and special numbers carry a tag.

    Exact type checks (`type(v) is int`, never isinstance) so subclasses such as an int whose
    `__eq__` always returns True are rejected rather than trusted.
    """
    if _depth > MAX_DEPTH:
        raise UnsupportedValue(f"value nested deeper than {MAX_DEPTH} levels (or cyclic)")
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value if -_BIG_INT < value < _BIG_INT else {"int": hex(value)}
    if t is float:
        return value if math.isfinite(value) else {"float": repr(value)}
    if t is bytes:
        return {"bytes": base64.b64encode(value).decode("ascii")}
    if t is list:
        return [to_canonical(v, _depth + 1) for v in value]
    if t is tuple:
        return {"tuple": [to_canonical(v, _depth + 1) for v in value]}
    if t is set or t is frozenset:
        return {t.__name__: sorted((to_canonical(v, _depth + 1) for v in value), key=canonical_text)}
    if t is dict:
        pairs = [[to_canonical(k, _depth + 1), to_canonical(v, _depth + 1)] for k, v in value.items()]
        return {"dict": sorted(pairs, key=lambda kv: canonical_text(kv[0]))}
    raise UnsupportedValue(f"returned an object of type {t.__module__}.{t.__qualname__}; only plain "
                           "None/bool/int/float/str/bytes/list/tuple/dict/set values are accepted")


def canonical_text(canonical: Any) -> str:
    """Exact, order-independent text of a canonical form (for hashing, sorting, equality)."""
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"), allow_nan=False)


def from_canonical(tree: Any, _depth: int = 0) -> Any:
    """Python value of a canonical form; raises ValueError on anything malformed (input is untrusted)."""
    if _depth > MAX_DEPTH + 1:
        raise ValueError("canonical value nested too deeply")
    t = type(tree)
    if tree is None or t in (bool, str, int):
        return tree
    if t is float:
        if not math.isfinite(tree):
            raise ValueError("non-finite floats must be tagged")
        return tree
    if t is list:
        return [from_canonical(v, _depth + 1) for v in tree]
    if t is not dict or len(tree) != 1:
        raise ValueError(f"malformed canonical value of type {t.__name__}")
    (tag, body), = tree.items()
    if tag not in _TAGS:
        raise ValueError(f"unknown canonical tag {tag!r}")
    if tag == "int" and type(body) is str:
        return int(body, 16)
    if tag == "float" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "bytes" and type(body) is str:
        return base64.b64decode(body.encode("ascii"), validate=True)
    if type(body) is not list:
        raise ValueError(f"malformed canonical {tag}")
    items = [from_canonical(v, _depth + 1) for v in body]
    try:
        if tag == "tuple":
            return tuple(items)
        if tag == "set":
            return set(items)
        if tag == "frozenset":
            return frozenset(items)
        if not all(type(kv) is list and len(kv) == 2 for kv in items):
            raise ValueError("malformed canonical dict")
        return {k: v for k, v in items}
    except TypeError as e:  # unhashable set element or dict key
        raise ValueError(f"malformed canonical {tag}: {e}") from None


def equal(a: Any, b: Any, rel_tol: float = 0.0, abs_tol: float = 0.0) -> bool:
    """Strict equality of two plain values (both from `from_canonical`).

    Numbers compare by value (1 == 1.0; floats within the tolerance; NaN equals NaN), but bool only
    equals bool and list never equals tuple. Set elements and dict keys compare exactly by their
    canonical form. No user-defined `__eq__` can be reached: only builtin types get here.
    """
    ta, tb = type(a), type(b)
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if ta in (int, float) and tb in (int, float):
        if a == b:
            return True
        if ta is int and tb is int:
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        try:
            return math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)
        except OverflowError:
            return False
    if {ta, tb} <= {set, frozenset}:
        return _keys(a) == _keys(b)
    if ta is not tb:
        return False
    if ta in (list, tuple):
        return len(a) == len(b) and all(equal(x, y, rel_tol, abs_tol) for x, y in zip(a, b))
    if ta is dict:
        ka, kb = _keyed(a), _keyed(b)
        return ka.keys() == kb.keys() and all(equal(ka[k], kb[k], rel_tol, abs_tol) for k in ka)
    return a == b  # None, str, bytes


def _keys(values: Any) -> set[str]:
    return {canonical_text(to_canonical(v)) for v in values}


def _keyed(d: dict) -> dict[str, Any]:
    return {canonical_text(to_canonical(k)): v for k, v in d.items()}


def parse_call(text: str) -> tuple[str, list, dict]:
    """`'f(1, [2, 3], k="x")'` -> ("f", [1, [2, 3]], {"k": "x"}); only a name and literals are accepted."""
    tree = _parse(text)
    if not isinstance(tree, ast.Call) or not isinstance(tree.func, ast.Name):
        raise ValueError("expected a call of a plain function name with literal arguments, e.g. f(1, [2, 3])")
    return (tree.func.id, *_literal_arguments(tree))


def parse_args(text: str) -> tuple[list, dict]:
    """Argument-list text such as `'1, [2, 3]'` (what goes between the parentheses) -> (args, kwargs).

    The text is parsed as the inside of a call and the whole tree must be exactly one call of a
    placeholder name with literal arguments, so text like `3) or True or (3` (an injection attempt
    that closes the parenthesis) yields a different tree and is rejected, never evaluated.
    """
    tree = _parse(f"_({text}\n)")
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "_"):
        raise ValueError("arguments must be comma-separated literals, e.g. 1, [2, 3]")
    return _literal_arguments(tree)


def parse_literal(text: str) -> Any:
    """One Python literal (`ast.literal_eval`), with every parser failure reported as ValueError."""
    try:
        return ast.literal_eval(_parse(text))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as e:
        raise ValueError(f"not a Python literal: {e}") from None


def _parse(text: str) -> ast.expr:
    if type(text) is not str:
        raise ValueError("expected text")
    try:
        return ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        raise ValueError(f"cannot parse {text[:80]!r}: {e}") from None


def _literal_arguments(call: ast.Call) -> tuple[list, dict]:
    args, kwargs = [], {}
    try:
        for i, node in enumerate(call.args, 1):
            if isinstance(node, ast.Starred):
                raise ValueError(f"argument {i} is starred")
            args.append(_literal(node, f"argument {i}"))
        for kw in call.keywords:
            if kw.arg is None:
                raise ValueError("** arguments are not accepted")
            kwargs[kw.arg] = _literal(kw.value, f"keyword argument {kw.arg!r}")
    except RecursionError:
        raise ValueError("arguments nested too deeply") from None
    return args, kwargs


def _literal(node: ast.expr, what: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError):
        raise ValueError(f"{what} is not a literal: {ast.unparse(node)[:80]}") from None
