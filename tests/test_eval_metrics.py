"""mean@k, pass@k (against the closed form with exact binomials), maj@k (hand cases, tie rule)."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import pytest

from rlpretrain.eval.metrics import maj_at_k, majority_answer, mean_at_k, pass_at_k, pass_at_k_scores, summarize


@pytest.mark.parametrize("n", [1, 2, 5, 16, 64, 200])
def test_pass_at_k_equals_the_closed_form(n):
    for c in range(n + 1):
        for k in sorted({1, min(2, n), n // 2 or 1, n}):
            exact = 1 - Fraction(comb(n - c, k), comb(n, k))
            assert pass_at_k(n, c, k) == pytest.approx(float(exact), abs=1e-12), (n, c, k)


def test_pass_at_k_hand_cases():
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)        # pass@1 is the fraction correct
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)         # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(5, 4, 2) == 1.0                        # n - c < k: every draw of 2 has a pass
    # large n: the binomials have hundreds of digits, the product stays exact enough
    assert pass_at_k(1000, 1, 1) == pytest.approx(1e-3)
    assert pass_at_k_scores([1.0, 0.0, 0.5, 1.0], 1) == pytest.approx(0.5)  # 0.5 is not a pass


def test_bad_k_and_c_are_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"k must be in \[1, n=4\], got k=5"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError, match=r"c must be in \[0, n=4\], got c=7"):
        pass_at_k(4, 7, 1)
    with pytest.raises(ValueError, match="3 answers but 2 scores"):
        maj_at_k(["a", "b", "c"], [1.0, 0.0])


def test_mean_at_k_uses_the_first_k_samples():
    assert mean_at_k([1, 0, 1, 1]) == 0.75
    assert mean_at_k([1, 0, 1, 1], 2) == 0.5


def test_maj_at_k_votes_and_breaks_ties_by_first_appearance():
    assert maj_at_k(["3", "4", "4", "3", "4"], [1, 0, 0, 1, 0]) == 0.0      # "4" wins 3-2
    assert maj_at_k(["3", "4", "4", "3"], [1, 0, 0, 1]) == 1.0             # 2-2 tie: "3" came first
    assert maj_at_k(["4", "3", "3", "4"], [0, 1, 1, 0]) == 0.0             # same tie, other order
    assert maj_at_k([None, None, "7"], [0, 0, 1]) == 1.0                   # no answer does not vote
    assert maj_at_k([None, None], [0, 0]) == 0.0
    assert maj_at_k(["a", "b", "b"], [1, 0, 0], k=1) == 1.0               # only the first k vote
    assert majority_answer(["x", "y", "y", "x", "z"]) == 0   # the index of the winning sample
    assert majority_answer(["z", "y", "y"]) == 1


def test_summarize_averages_over_examples():
    scores = [[1, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]]
    answers = [["a", "b", "b", "c"], ["d"] * 4, [None] * 4]
    out = summarize(scores, answers, ks=(1, 4))
    assert out["mean@1"] == pytest.approx(2 / 3)
    assert out["mean@4"] == pytest.approx((0.25 + 1 + 0) / 3)
    assert out["pass@1"] == pytest.approx((0.25 + 1 + 0) / 3)
    assert out["pass@4"] == pytest.approx(2 / 3)
    assert out["maj@4"] == pytest.approx(1 / 3)   # example 1: "b" wins (score 0); example 2: "d" (1)
