"""Canonical forms, strict comparison and literal-only parsing (no processes involved)."""

from __future__ import annotations

import math

import pytest

from rlpretrain.sandbox import UnsupportedValue, equal, from_canonical, parse_args, parse_call, to_canonical


@pytest.mark.parametrize("value", [None, True, 0, -5, 2 ** 80, -(2 ** 70), 1.5, -0.0, "s\udc80", b"\x00\xff",
                                   [1, (2, 3)], (), {1, 2}, frozenset({"a"}), {(1, 2): [None], "k": {}},
                                   [[[[1]]]]])
def test_round_trip(value):
    assert equal(from_canonical(to_canonical(value)), value)
    assert type(from_canonical(to_canonical(value))) is type(value)


def test_special_floats_and_tags():
    assert to_canonical(float("inf")) == {"float": "inf"}
    assert math.isnan(from_canonical(to_canonical(float("nan"))))
    assert to_canonical((1, [2])) == {"tuple": [1, [2]]}
    assert to_canonical({3, 1}) == {"set": [1, 3]}
    assert to_canonical({"b": 1, "a": 2}) == {"dict": [["a", 2], ["b", 1]]}


def test_unsupported_types_are_rejected():
    class X(int):
        def __eq__(self, other):
            return True

    for bad in (X(1), object(), [1, X(2)], {1: object()}, 1j, bytearray(b"x")):
        with pytest.raises(UnsupportedValue):
            to_canonical(bad)
    cyclic = []
    cyclic.append(cyclic)
    with pytest.raises(UnsupportedValue, match="nested deeper"):
        to_canonical(cyclic)


@pytest.mark.parametrize("tree", [{"tuple": 1}, {"x": []}, {"dict": [[[1], 2]]}, {"a": 1, "b": 2}, float("nan"),
                                  {"int": 5}, {"set": [[1]]}])
def test_malformed_canonical_forms_are_rejected(tree):
    with pytest.raises(ValueError):
        from_canonical(tree)


def test_equal_is_strict():
    assert equal(1, 1.0) and not equal(True, 1) and not equal([1], (1,))
    assert equal(0.1 + 0.2, 0.3, rel_tol=1e-9) and not equal(0.1 + 0.2, 0.3)
    assert equal(float("nan"), float("nan")) and equal({1, 2}, frozenset({2, 1}))
    assert not equal({1: 1}, {1.0: 1}) and equal({"a": [1.0]}, {"a": [1]})
    assert not equal(2 ** 80, float(2 ** 80) * 3, rel_tol=0.5) and not equal("1", 1)


def test_parse_call_accepts_only_literals():
    assert parse_call("f(1, [2, 3], k={'a': (1,)})") == ("f", [1, [2, 3]], {"k": {"a": (1,)}})
    for bad in ("f(x)", "f(1) or True", "__import__('os').system('id')", "f(*[1])", "f(**{})", "f(1)(2)",
                "f(lambda: 1)", "f(" * 300 + ")" * 300, "f(1, [2, 3]"):
        with pytest.raises(ValueError):
            parse_call(bad)


def test_parse_args_cannot_be_escaped():
    assert parse_args("1, [2, 3]") == ([1, [2, 3]], {})
    assert parse_args("(1, 2)") == ([(1, 2)], {})
    assert parse_args("") == ([], {})
    for bad in ("3) or True or (3", "1), print(2", "1)\nimport os\n(2", "x", "1) #", "__import__('os')"):
        with pytest.raises(ValueError):
            parse_args(bad)
