"""`rlpretrain-tables PAPER`: the paper's tables beside ours, with the differences.

Reads `experiments/PAPER/paper_*.csv` (the paper's numbers as printed; `#` lines are the table's
source and its known inconsistencies) and `experiments/PAPER/ours.yaml` (our rows: each cell read
from a `results.json` of the eval job, or a value with the file it was read from). Writes
`experiments/PAPER/tables/`: one markdown file for all tables (paper rows, ours, ours - paper where a
row names the paper row it reproduces; missing cells marked), a CSV per table, and a PNG per table
that has cells of ours.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent.parent
MISSING = "–"  # a cell the paper or we do not have


@dataclass
class Table:
    name: str
    notes: list[str]  # the `#` lines: source, then known inconsistencies
    columns: list[str]  # the first one names the rows
    rows: list[list[str]]
    ours: list[dict] = field(default_factory=list)  # {label, values: {column: float}, compare_to, sources}


def read_paper_table(path: Path) -> Table:
    lines = path.read_text().splitlines()
    notes = [line.lstrip("# ").strip() for line in lines if line.startswith("#")]
    body = list(csv.reader(line for line in lines if line.strip() and not line.startswith("#")))
    if not body:
        raise ValueError(f"{path}: no header row")
    name = path.stem.removeprefix("paper_")
    return Table(name=name, notes=notes, columns=body[0], rows=body[1:])


def cell_value(cell: dict, base: Path) -> tuple[float | str, str]:
    """(value, where it came from) of one of our cells; `text` is a label cell (e.g. RPT's mode)."""
    if "text" in cell:
        return str(cell["text"]), ""
    if "results" in cell:
        path = base / cell["results"]
        if not path.exists():
            raise FileNotFoundError(f"ours.yaml: {path} does not exist (run the command in the row's `command`)")
        results = json.loads(path.read_text())
        bench = results["benchmarks"].get(cell["benchmark"])
        where = cell["benchmark"]
        if bench is not None and "by_source" in cell:  # one data source's metrics (e.g. RPT's hard split)
            where = f"{where} / {cell['by_source']}"
            bench = bench.get("by_source", {}).get(cell["by_source"])
        if bench is None or cell["metric"] not in bench:
            raise KeyError(f"ours.yaml: {path} has no {cell['metric']} for benchmark {where} "
                           f"(it has {sorted(results['benchmarks'])})")
        return float(bench[cell["metric"]]), f"{cell['results']} ({where}, {cell['metric']})"
    if "value" in cell:
        if "source" not in cell:
            raise ValueError(f"ours.yaml: a literal value ({cell['value']}) needs a `source` saying where it was read")
        return float(cell["value"]), cell["source"]
    raise ValueError(f"ours.yaml: a cell needs `results` (+ benchmark, metric, optional by_source) or `value` "
                     f"(+ source): {cell}")


def attach_ours(tables: dict[str, Table], ours_path: Path) -> None:
    if not ours_path.exists():
        return
    spec = yaml.safe_load(ours_path.read_text()) or {}
    for row in spec.get("rows", []):
        table = tables.get(row["table"])
        if table is None:
            raise KeyError(f"{ours_path}: no paper table '{row['table']}'; tables: {sorted(tables)}")
        unknown = [c for c in row.get("cells", {}) if c not in table.columns[1:]]
        if unknown:
            raise KeyError(f"{ours_path}: table {table.name} has no column {unknown}; columns: {table.columns[1:]}")
        compare_to = row.get("compare_to")
        if compare_to is not None and compare_to not in [r[0] for r in table.rows]:
            raise KeyError(f"{ours_path}: table {table.name} has no row '{compare_to}' to compare with")
        values, sources = {}, {}
        for column, cell in row.get("cells", {}).items():
            values[column], sources[column] = cell_value(cell, ours_path.parent)
        table.ours.append({"label": row["label"], "values": values, "sources": sources, "compare_to": compare_to,
                           "command": row.get("command"), "note": row.get("note")})


def as_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def show(value: float | str) -> str:
    return f"{value:.2f}" if isinstance(value, float) else value


def rendered_rows(table: Table) -> list[tuple[str, list[str]]]:
    """(kind, cells) for every row: paper rows as printed, ours, and ours - paper where compared."""
    out = [("paper", row) for row in table.rows]
    for ours in table.ours:
        cells = [show(ours["values"][c]) if c in ours["values"] else MISSING for c in table.columns[1:]]
        out.append(("ours", [ours["label"], *cells]))
        if ours["compare_to"] is not None:
            paper = dict(zip(table.columns, next(r for r in table.rows if r[0] == ours["compare_to"])))
            diffs = []
            for c in table.columns[1:]:
                p = as_float(paper.get(c, ""))
                value = ours["values"].get(c)
                diffs.append(f"{value - p:+.2f}" if isinstance(value, float) and p is not None else MISSING)
            out.append(("ours - paper", [f"{ours['label']} - {ours['compare_to']}", *diffs]))
    return out


def markdown(table: Table) -> str:
    lines = [f"### {table.name}", "", f"{table.notes[0]}" if table.notes else "", "",
             "| | " + " | ".join(table.columns) + " |", "|---" * (len(table.columns) + 1) + "|"]
    for kind, cells in rendered_rows(table):
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    for note in table.notes[1:]:
        lines.append(f"\nNote (the paper): {note}")
    for ours in table.ours:
        by_source: dict[str, list[str]] = {}
        for column, source in ours["sources"].items():
            if source:
                by_source.setdefault(source, []).append(column)
        lines.append(f"\nOurs, {ours['label']}: " + "; ".join(f"{', '.join(c)} from {s}" for s, c in by_source.items())
                     + (f". Command: `{ours['command']}`" if ours["command"] else "")
                     + (f". {ours['note']}" if ours["note"] else ""))
    if not table.ours:
        lines.append("\nNo cell of ours: nothing comparable has been run here yet.")
    return "\n".join(lines) + "\n"


def write_csv(table: Table, path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["kind", *table.columns])
        for kind, cells in rendered_rows(table):
            writer.writerow([kind, *cells])


def write_png(table: Table, path: Path) -> None:
    """Grouped bars over the columns where we have a value: each paper row and each row of ours."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [c for c in table.columns[1:] if any(isinstance(o["values"].get(c), float) for o in table.ours)]
    def label(row) -> str:  # the row's name and its text cells (e.g. RPT's mode)
        return ", ".join([row[0], *(c for c in row[1:] if c and as_float(c) is None and c != "-")])

    series = [(label(r) + " (paper)", [as_float(dict(zip(table.columns, r)).get(c, "")) for c in columns])
              for r in table.rows]
    series += [(o["label"] + "".join(f", {v}" for v in o["values"].values() if isinstance(v, str)),
                [o["values"].get(c) for c in columns]) for o in table.ours]
    series = [(name, [v if v is not None else float("nan") for v in values]) for name, values in series]
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(columns) + 2), 3.6 + 0.16 * len(series)))
    for i, (name, values) in enumerate(series):
        ax.bar([x + i * width for x in range(len(columns))], values, width, label=name,
               hatch="//" if "(paper)" not in name else None)
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(columns))], columns)
    ax.set_title(table.name, fontsize=9)
    ax.legend(fontsize=6, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.12))  # below: never over the bars
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render(paper: str, experiments: Path = REPO / "experiments") -> Path:
    folder = experiments / paper
    files = sorted(folder.glob("paper_*.csv"))
    if not files:
        known = sorted(p.name for p in experiments.iterdir() if any(p.glob("paper_*.csv")))
        raise FileNotFoundError(f"no paper tables (paper_*.csv) in {folder}; papers: {', '.join(known)}")
    tables = {t.name: t for t in map(read_paper_table, files)}
    attach_ours(tables, folder / "ours.yaml")
    out = folder / "tables"
    out.mkdir(exist_ok=True)
    parts = [f"# {paper.upper()}: the paper's tables and ours\n",
             f"Written by `rlpretrain-tables {paper}` from `paper_*.csv` and `ours.yaml`; do not edit by hand.\n"]
    for table in tables.values():
        parts.append(markdown(table))
        write_csv(table, out / f"{table.name}.csv")
        if table.ours:
            write_png(table, out / f"{table.name}.png")
            parts.append(f"![{table.name}]({table.name}.png)\n")
    (out / "README.md").write_text("\n".join(parts))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="rlpretrain-tables", description=__doc__.splitlines()[0])
    parser.add_argument("papers", nargs="+", help="rlp, rpt, tpt, azr (folders of experiments/)")
    args = parser.parse_args(argv)
    for paper in args.papers:
        try:
            print(f"{paper}: {render(paper)}")
        except (FileNotFoundError, KeyError, ValueError) as e:
            sys.exit(f"error: {e.args[0] if isinstance(e, KeyError) else e}")


if __name__ == "__main__":
    main()
