"""Numbers with their noise: the run summary's change and standard error, accuracy intervals, the
TPT comparison's caveat."""

import math
import statistics

import pytest

from rlpretrain.eval.next_token_accuracy import to_markdown, wilson_interval
from rlpretrain.methods.tpt.pipeline import caveat, thought_content
from rlpretrain.run.summary import fifths


def test_too_few_steps_are_not_compared():
    r = fifths([0.1, 0.5, 0.2, 0.9])
    assert not r.comparable and r.mean == pytest.approx(0.425)
    assert r.verdict() == ("reward mean over the 4 steps: +0.4250 (too few steps to compare the first and last "
                           "fifths: 10 or more tell a change from noise)")


def test_change_and_standard_error_over_fifths():
    values = [0.0, 0.2, 5, 5, 5, 5, 5, 5, 1.0, 1.4]  # fifths of 2 steps each
    r = fifths(values)
    assert (r.first, r.last) == (pytest.approx(0.1), pytest.approx(1.2))
    se = math.sqrt(statistics.variance([0.0, 0.2]) / 2 + statistics.variance([1.0, 1.4]) / 2)
    assert r.se == pytest.approx(se) and r.se == pytest.approx(math.sqrt(0.01 + 0.04))
    assert r.verdict() == ("rose by +1.1000, standard error 0.2236 (more than 2 standard errors: a change; "
                           "steps taken as independent)")
    assert "fell by -0.0500" in fifths([1.0, 1.1] + [0.0] * 6 + [1.0, 1.0]).verdict()
    assert "no clear change" in fifths([1.0, 0.0] + [0.0] * 6 + [0.0, 1.1]).verdict()


def test_wilson_interval_and_table_cells():
    low, high = wilson_interval(50.0, 100)  # 50 of 100: [40.38, 59.62] (Wilson 1927; Newcombe 1998, Table I)
    assert (low, high) == (pytest.approx(40.383, abs=1e-3), pytest.approx(59.617, abs=1e-3))
    assert wilson_interval(0.0, 10)[0] == 0.0 and wilson_interval(100.0, 10)[1] == 100.0
    result = {"thresholds": [0.5], "rows": [{"mode": "standard", "split": "split0", "threshold": 0.5, "n": 100,
                                             "accuracy": 50.0}]}
    table = to_markdown(result)
    assert "| standard | 50.00 [40.4, 59.6] (n=100) |" in table
    assert "cells: accuracy [95% Wilson interval] (n = positions)" in table


def test_thought_content_and_caveat():
    counts = thought_content(["", "  ", "ok .", "hmm", "12 + 30 = 42 , carry 1"])
    assert counts == {"total": 5, "empty": 2, "trivial": 2}
    assert caveat(counts).startswith("  caveat: 2 of 5 thoughts are empty and 2 more have fewer than 3 words (80% in all); "
                                     "one seed and no control arm (method.arms=[vanilla,tpt,shuffled] adds one")
