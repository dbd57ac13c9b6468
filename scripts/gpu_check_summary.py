"""The summary table of scripts/gpu_check.sh, read from the files its stages wrote into one folder.

    python scripts/gpu_check_summary.py OUT_DIR

OUT_DIR holds stages.tsv (one line per stage: name, exit code, seconds), machine.json, pytest.xml
(the GPU suite's JUnit report), learner.json (benchmarks/bench_learner_throughput.py --json) and
rlp_step.json (benchmarks/bench_rlp_step.py --json). A stage that failed or never ran shows as such;
the table holds whatever finished. Prints a Markdown table; exits 1 if any stage failed.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def read_stages(out: Path) -> dict[str, tuple[int, float]]:
    path = out / "stages.tsv"
    stages = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                name, rc, seconds = line.split("\t")
                stages[name] = (int(rc), float(seconds))
    return stages


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def suite_counts(path: Path) -> dict[str, int] | None:
    """passed / failed / skipped from a JUnit XML report (pytest --junitxml); errors count as failed."""
    if not path.exists():
        return None
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return {"passed": total - failed - skipped, "failed": failed, "skipped": skipped}


def _gib(value: float | None) -> str:
    return f"{value:.1f} GiB" if value is not None else "n/a (CPU)"


def learner_rows(data: dict) -> list[tuple[str, str]]:
    """One row per ZeRO stage or efficiency variant (`--variants`) the benchmark measured."""
    rows = []
    for r in data["results"]:
        mfu = f"MFU {100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "MFU n/a"
        variant = f", {r['variant']}" if "variant" in r else ""
        what = (f"learner: {data['model']} {data['precision']}, ZeRO-{r['stage']}{variant}, {data['rows']} x "
                f"{data['seq_len']} tokens per step, {data['world']} x {data['device']}")
        rows.append((what, f"{r['tokens_per_s']:,.0f} tok/s, {r['tflops_per_device']:.1f} TFLOP/s, {mfu}, "
                           f"peak {_gib(r['peak_mem_gib'])}"))
    return rows


def rlp_row(d: dict) -> tuple[str, str]:
    step = d["step_s"]
    parts = " + ".join(f"{name} {d[name + '_s']:.2f} ({100 * d[name + '_s'] / step:.0f}%)"
                       for name in ("generate", "score", "update"))
    what = (f"RLP step: {d['model']} body ({d['params'] / 1e6:.1f}M, random init), {d['precision']}, "
            f"{d['contexts']} contexts x G={d['group']}, {d['thought_tokens']}-token thoughts")
    return what, (f"step {step:.2f} s = {parts}; decode {d['decode_tokens_per_s']:,.0f} tok/s; "
                  f"peak {_gib(d['peak_mem_gib'])}")


# stage name -> (its output file, the row it makes)
ROWS = {
    "gpu_suite": "pytest.xml",
    "learner_bench": "learner.json",
    "rlp_bench": "rlp_step.json",
}


def summarize(out: Path) -> tuple[str, bool]:
    """(the Markdown table, whether every stage passed)."""
    stages = read_stages(out)
    rows = [("check", "result"), ("---", "---")]
    machine = _json(out / "machine.json")
    if machine:
        rows.append(("machine", f"{machine['device']}, torch {machine['torch']}, Python {machine['python']}"))
    for name, (rc, seconds) in stages.items():
        rows.append((f"stage {name}", f"{'ok' if rc == 0 else f'FAILED (exit {rc})'}, {seconds:.0f} s"))
    counts = suite_counts(out / ROWS["gpu_suite"])
    if counts:
        rows.append(("GPU suite (pytest -m gpu)",
                     f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"))
    learner = _json(out / ROWS["learner_bench"])
    if learner:
        rows.extend(learner_rows(learner))
    rlp = _json(out / ROWS["rlp_bench"])
    if rlp:
        rows.append(rlp_row(rlp))
    for name, file in ROWS.items():
        if name not in stages and not (out / file).exists():
            rows.append((f"stage {name}", "not run"))
    ok = bool(stages) and all(rc == 0 for rc, _ in stages.values())
    return "\n".join(f"| {a} | {b} |" for a, b in rows), ok


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    if not out.is_dir():
        print(f"gpu_check_summary: {out} is not a folder", file=sys.stderr)
        return 2
    table, ok = summarize(out)
    print(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
