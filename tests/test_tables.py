"""rlpretrain-tables: every paper number of the four papers rendered, our cells from results.json,
ours - paper where a row reproduces one, missing cells marked, bad ours.yaml refused with a reason."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from rlpretrain.eval.tables import MISSING, main, render

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


@pytest.mark.parametrize("paper", ["rlp", "rpt", "tpt", "azr"])
def test_every_paper_number_is_rendered(paper, tmp_path):
    # the whole tree: a paper's ours.yaml may read another folder's results (experiments/eval/)
    shutil.copytree(EXPERIMENTS, tmp_path, ignore=shutil.ignore_patterns("tables"), dirs_exist_ok=True)
    out = render(paper, tmp_path)
    text = (out / "README.md").read_text()
    files = sorted((tmp_path / paper).glob("paper_*.csv"))
    assert files
    for path in files:
        rows = list(csv.reader(l for l in path.read_text().splitlines() if l.strip() and not l.startswith("#")))
        rendered = list(csv.reader((out / f"{path.stem.removeprefix('paper_')}.csv").read_text().splitlines()))
        assert [r[1:] for r in rendered if r[0] == "paper"] == rows[1:]  # every paper cell, as printed
        for row in rows[1:]:
            assert "| paper | " + " | ".join(row) + " |" in text


def _results(path: Path, benchmarks: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"suite": "t", "benchmarks": benchmarks}))


def test_ours_from_results_with_the_difference_and_missing_cells(tmp_path):
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "paper_table9.csv").write_text("# Toy paper, Table 9\n# a known inconsistency\nmodel,A,B\nbase,10.0,20.0\n")
    _results(folder / "results" / "r.json", {"bench_a": {"pass@1": 12.5, "n_examples": 8},
                                              "bench_b": {"mean@1": 50.0, "by_source": {"hard": {"mean@1": 17.25}}}})
    (folder / "ours.yaml").write_text(
        "rows:\n  - table: table9\n    label: ours-base\n    compare_to: base\n    command: rlpretrain job=eval\n"
        "    cells:\n      A: {results: results/r.json, benchmark: bench_a, metric: pass@1}\n"
        "      B: {results: results/r.json, benchmark: bench_b, by_source: hard, metric: mean@1}\n")
    out = render("toy", tmp_path)
    rows = list(csv.reader((out / "table9.csv").read_text().splitlines()))
    assert rows[2] == ["ours", "ours-base", "12.50", "17.25"]  # B: one data source's number, not the benchmark's
    assert rows[3] == ["ours - paper", "ours-base - base", "+2.50", "-2.75"]
    text = (out / "README.md").read_text()
    assert "Note (the paper): a known inconsistency" in text and "A from results/r.json (bench_a, pass@1)" in text
    assert "B from results/r.json (bench_b / hard, mean@1)" in text
    assert (out / "table9.png").stat().st_size > 0


@pytest.mark.parametrize("ours, message", [
    ("rows:\n  - {table: nope, label: x, cells: {}}\n", "no paper table 'nope'"),
    ("rows:\n  - {table: table9, label: x, cells: {C: {value: 1, source: s}}}\n", "has no column \\['C'\\]"),
    ("rows:\n  - {table: table9, label: x, cells: {A: {value: 1}}}\n", "needs a `source`"),
    ("rows:\n  - {table: table9, label: x, cells: {A: {results: r.json, benchmark: b, metric: m}}}\n", "does not exist"),
    ("rows:\n  - {table: table9, label: x, compare_to: other, cells: {}}\n", "has no row 'other'"),
    ("rows:\n  - {table: table9, label: x, cells: {A: {results: has.json, benchmark: b, by_source: hard, metric: m}}}\n",
     "has no m for benchmark b / hard"),
])
def test_bad_ours_yaml_is_refused_with_its_reason(tmp_path, ours, message, capsys):
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "paper_table9.csv").write_text("# Toy\nmodel,A,B\nbase,10.0,20.0\n")
    _results(folder / "has.json", {"b": {"m": 1.0}})  # a benchmark without data sources
    (folder / "ours.yaml").write_text(ours)
    with pytest.raises((KeyError, ValueError, FileNotFoundError), match=message):
        render("toy", tmp_path)


def test_unknown_paper_names_the_known_ones(tmp_path):
    with pytest.raises(FileNotFoundError, match="papers: azr, rlp, rpt, tpt"):
        render("nope", EXPERIMENTS)
