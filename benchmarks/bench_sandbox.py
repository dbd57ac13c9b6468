"""Throughput of the sandbox against two unisolated baselines, on the same small programs.

    python benchmarks/bench_sandbox.py [--n 1000] [--workers N]

(a) sandbox.SandboxPool (isolated, warm workers, one fresh forked child per program)
(b) a fresh, unisolated `python -I -S -c` subprocess per program (what a naive executor does)
(c) a persistent, unisolated multiprocessing pool that `exec`s each program (no isolation at all)
All three use the same number of concurrent workers. Timing is time.perf_counter only.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlpretrain.sandbox import Job, SandboxPool  # noqa: E402

PROGRAMS = [
    ("def f(n):\n    return sum(i * i for i in range(n))", lambda i: [i % 97]),
    ("def f(s):\n    return s[::-1].upper()", lambda i: [f"word{i}"]),
    ("def f(xs):\n    return sorted(xs, reverse=True)[:3]", lambda i: [[(i * 7 + k * 13) % 31 for k in range(10)]]),
    ("from collections import Counter\ndef f(s):\n    return Counter(s).most_common(1)[0]", lambda i: ["abracadabra" * (1 + i % 3)]),
    ("import math\ndef f(n):\n    return math.factorial(n) % 1000003", lambda i: [i % 200]),
    ("def f(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a", lambda i: [i % 90]),
    ("def f(d):\n    return {v: k for k, v in d.items()}", lambda i: [{"a": i, "b": i + 1}]),
    ("import re\ndef f(s):\n    return re.findall(r'\\d+', s)", lambda i: [f"a{i}b{i * 3}c"]),
]


def programs(n: int) -> list[tuple[str, list]]:
    return [(PROGRAMS[i % len(PROGRAMS)][0], PROGRAMS[i % len(PROGRAMS)][1](i)) for i in range(n)]


def expected(code: str, args: list):
    ns: dict = {}
    exec(code, ns)  # our own benchmark programs, to check every runner computes the same thing
    return ns["f"](*args)


def bench_sandbox(progs, workers: int) -> tuple[float, int]:
    jobs = [Job(code, args=args, expected=expected(code, args)) for code, args in progs]
    with SandboxPool(workers) as pool:
        pool.run_batch(jobs[:50])  # warm-up
        start = time.perf_counter()
        results = pool.run_batch(jobs)
        elapsed = time.perf_counter() - start
        print(f"    sandbox mode: {pool.mode}, {workers} workers")
    return elapsed, sum(r.status == "ok" and bool(r.match) for r in results)


PYTHON = os.path.realpath(sys.executable)
RUNNER = "\nimport json, sys\nprint(json.dumps(f(*json.loads(sys.argv[1]))))"


def _fresh(prog) -> bool:
    code, args = prog
    # The cheapest fresh interpreter (-I -S: no site, no venv .pth files), so the baseline is flattered, not handicapped.
    out = subprocess.run([PYTHON, "-I", "-S", "-c", code + RUNNER, json.dumps(args)], capture_output=True, text=True)
    return out.returncode == 0 and json.loads(out.stdout) == json.loads(json.dumps(expected(code, args)))


def bench_fresh(progs, workers: int) -> tuple[float, int]:
    with ThreadPoolExecutor(workers) as ex:
        start = time.perf_counter()
        ok = sum(ex.map(_fresh, progs))
        return time.perf_counter() - start, ok


def _exec(prog) -> bool:
    code, args = prog
    ns: dict = {}
    exec(code, ns)
    return ns["f"](*args) == expected(code, args)


def bench_persistent(progs, workers: int) -> tuple[float, int]:
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(_exec, progs[:50])  # warm-up
        start = time.perf_counter()
        ok = sum(pool.map(_exec, progs, chunksize=8))
        return time.perf_counter() - start, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of programs (default 1000)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="concurrent workers (default: CPUs)")
    args = parser.parse_args()
    progs = programs(args.n)
    print(f"{args.n} small programs, {args.workers} workers, {os.cpu_count()} CPUs")
    rates = {}
    for name, fn in (("(a) sandbox (isolated, warm pool)", bench_sandbox),
                     ("(b) fresh python subprocess per program (unisolated)", bench_fresh),
                     ("(c) persistent exec pool (unisolated)", bench_persistent)):
        elapsed, ok = fn(progs, args.workers)
        rates[name[:3]] = args.n / elapsed
        print(f"{name}: {args.n / elapsed:8.1f} executions/s  ({elapsed:.2f} s, {ok}/{args.n} correct)")
    print(f"sandbox / fresh subprocess: {rates['(a)'] / rates['(b)']:.1f}x")
    print(f"sandbox / persistent exec pool: {rates['(a)'] / rates['(c)']:.2f}x")


if __name__ == "__main__":
    main()
