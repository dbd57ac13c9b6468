"""Pool behaviour: timeouts, worker replacement, clean shutdown, determinism, async, CLI, mode choice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

from helpers_sandbox import alive, descendants, make_pool, needs_bwrap, nobody_processes
from rlpretrain.sandbox import Job, Limits, SandboxError, SandboxPool, SandboxWarning, isolation

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pool():
    p = SandboxPool(2)
    yield p
    p.close()


@needs_bwrap
def test_auto_mode_is_bwrap_here(pool):
    assert pool.mode == "bwrap" and pool.run(Job("def f():\n    return 1")).mode == "bwrap"


@pytest.mark.parametrize("code", ["def f():\n    while True:\n        pass", "import time\ndef f():\n    time.sleep(60)"])
def test_timeout_is_enforced_within_20_percent(pool, code):
    limit = 1.5
    start = time.monotonic()
    r = pool.run(Job(code, limits=Limits(timeout=limit)))
    elapsed = time.monotonic() - start
    assert r.status == "timeout" and r.error == "wall-clock limit of 1.5s exceeded"
    assert limit <= r.wall_time <= 1.2 * limit
    assert limit <= elapsed <= 1.2 * limit


def test_results_are_structured(pool):
    r = pool.run(Job("def g(a, b=0):\n    print('hi')\n    return (a, [b], {'k': {1, 2}}, b'\\x00', 2 ** 70, float('nan'))",
                     func="g", args=(1,), kwargs={"b": 2}))
    assert r.status == "ok" and r.stdout == "hi\n" and not r.stdout_truncated
    assert r.python_value()[:5] == (1, [2], {"k": {1, 2}}, b"\x00", 2 ** 70)
    assert r.value["tuple"][4] == {"int": hex(2 ** 70)} and r.value["tuple"][5] == {"float": "nan"}
    assert r.cpu_time > 0 and r.wall_time >= r.cpu_time * 0.5
    err = pool.run(Job("def f():\n    raise ValueError('bad input')"))
    assert (err.status, err.error_type, err.error) == ("error", "ValueError", "bad input")
    assert "ValueError: bad input" in err.stderr
    missing = pool.run(Job("x = 1"))
    assert (missing.status, missing.error_type) == ("error", "NameError")
    script = pool.run(Job("print('main' if __name__ == '__main__' else 'no')", func=None))
    assert (script.status, script.stdout, script.value) == ("ok", "main\n", None)
    assert json.loads(json.dumps(r.to_json()))["value"] == r.value


def test_expected_values_compare_strictly(pool):
    cases = [("(1, 2)", (1, 2), True), ("[1, 2]", (1, 2), False), ("True", 1, False), ("1", 1.0, True),
             ("0.1 + 0.2", 0.3, False), ("{1: 'a'}", {1: "a"}, True), ("{3, 1}", {1, 3}, True)]
    for expr, expected, match in cases:
        r = pool.run(Job(f"def f():\n    return {expr}", expected=expected))
        assert (r.status, r.match) == ("ok", match), expr
    close = pool.run(Job("def f():\n    return 0.1 + 0.2", expected=0.3, rel_tol=1e-9))
    assert close.match is True
    text = pool.run(Job("def f(x):\n    return x * 2", args_text="[1, 2]", expected_text="[1, 2, 1, 2]"))
    assert (text.status, text.match) == ("ok", True)


def test_crashed_worker_is_replaced(pool):
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", pool.run(Job("import time\ndef f():\n    time.sleep(30)",
                                                                         limits=Limits(timeout=30)))))
    t.start()
    time.sleep(0.5)
    victims = pool.worker_pids()
    inner = set().union(*(descendants(v) for v in victims))
    for pid in victims:
        os.killpg(pid, signal.SIGKILL)
    t.join(10)
    assert box["r"].status == "killed" and box["r"].error_type == "WorkerDied"
    assert "signal SIGKILL" in box["r"].error
    # bwrap's worker runs in a session of its own and dies after bwrap (die-with-parent): a job
    # sent in between is one it really received, so wait until the whole tree is gone.
    deadline = time.monotonic() + 10
    while any(alive(p) for p in inner) and time.monotonic() < deadline:
        time.sleep(0.01)
    results = pool.run_batch([Job("def f(x):\n    return x", args=(i,)) for i in range(20)])
    assert [r.value for r in results] == list(range(20))
    assert not set(pool.worker_pids()) & set(victims)


def test_jobs_sent_to_a_worker_killed_while_idle_go_to_a_fresh_one():
    # rlimits mode: the host pid is the worker itself, so the kill races the next send. Only a
    # worker that acknowledged a batch can fail its jobs; without the acknowledgement most of these
    # rounds lost a job to WorkerDied.
    with make_pool("rlimits", workers=2) as p:
        for _ in range(10):
            for pid in p.worker_pids():
                os.killpg(pid, signal.SIGKILL)
            results = p.run_batch([Job("def f(x):\n    return x", args=(i,)) for i in range(6)])
            assert [(r.status, r.value) for r in results] == [("ok", i) for i in range(6)]


def test_pool_shuts_down_cleanly():
    before = descendants()
    p = SandboxPool(2)
    futures = [p.submit(Job("import os\ndef f():\n    if os.fork() == 0:\n        os.setsid()\n        import time\n"
                            "        time.sleep(100)\n    return 1")) for _ in range(4)]
    assert len(descendants() - before) >= 2
    p.close()
    assert [f.result().value for f in futures] == [1, 1, 1, 1]  # queued jobs finish first
    assert descendants() - before == set()
    if os.geteuid() == 0:
        assert not nobody_processes()
    with pytest.raises(RuntimeError):
        p.submit(Job("def f():\n    return 1"))


def test_determinism_check(pool):
    ok, results = pool.check_determinism(Job("def f():\n    return sorted({'b', 'a', 'c'})"))
    assert ok and len(results) == 2 and results[0].value == ["a", "b", "c"]
    ok, results = pool.check_determinism(Job("import random\ndef f():\n    return random.random()"))
    assert not ok and results[0].value != results[1].value
    ok, _ = pool.check_determinism(Job("def f():\n    while True:\n        pass", limits=Limits(timeout=0.5)))
    assert not ok


def test_async_batch(pool):
    jobs = [Job("def f(x):\n    return x * x", args=(i,), expected=i * i) for i in range(50)]
    results = asyncio.run(pool.arun_batch(jobs))
    assert all(r.status == "ok" and r.match for r in results)
    assert asyncio.run(pool.arun(jobs[3])).value == 9


def test_jobs_must_be_data(pool):
    with pytest.raises(ValueError):
        pool.submit(Job("def f(x):\n    return x", args=(object(),)))
    with pytest.raises(ValueError):
        pool.submit(Job("def f():\n    pass", func="f(); import os"))


def _cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "sandbox", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60)


def test_cli(tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text("def f(a, b):\n    return a + sum(b)\ndef boom():\n    raise KeyError('k')\n")
    out = _cli("run", str(prog), "--call", "f(1, [2, 3])", "--timeout", "5", "--memory", "256")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["value"] == 6 and json.loads(out.stdout)["status"] == "ok"
    out = _cli("run", str(prog), "--call", "boom()")
    assert out.returncode == 0 and json.loads(out.stdout)["error_type"] == "KeyError"
    out = _cli("run", str(prog), "--call", "f(__import__('os'), [])")
    assert out.returncode == 2 and "--call must be a function name with literal arguments" in out.stderr
    assert "argument 1 is not a literal" in out.stderr
    out = _cli("run", str(prog), "--call", "f(1) or True")
    assert out.returncode == 2 and "--call" in out.stderr
    out = _cli("run", str(tmp_path / "missing.py"))
    assert out.returncode == 2 and "cannot read" in out.stderr


def test_auto_mode_falls_back_and_forced_modes_fail_loudly(monkeypatch):
    monkeypatch.setattr(isolation, "available", lambda mode: mode == "rlimits")
    assert isolation.resolve("auto") == "rlimits"
    with pytest.raises(SandboxError, match="cannot run"):
        isolation.resolve("bwrap")
    with pytest.raises(ValueError):
        isolation.resolve("docker")


@pytest.mark.parametrize("mode", ["unshare", "rlimits"])
def test_fallback_modes_warn_once_with_what_is_missing(mode):
    if not isolation.available(mode):
        pytest.skip(f"{mode} cannot run here")
    isolation.warn_reduced.cache_clear()
    with pytest.warns(SandboxWarning, match=f"'{mode}' mode.*NOT protected"):
        SandboxPool(1, mode=mode).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SandboxWarning)
        p = SandboxPool(1, mode=mode)  # once per process: no second warning
    r = p.run(Job("def f():\n    return 7", expected=7))
    p.close()
    assert (r.status, r.match, r.mode) == ("ok", True, mode)


def test_rlimits_mode_is_not_network_isolated_as_documented():
    p = make_pool("rlimits", workers=1)
    try:
        assert any("NO network isolation" in m for m in isolation.missing_protections("rlimits"))
        r = p.run(Job("import os\ndef f():\n    return os.getuid()"))
        assert r.value == (65534 if os.geteuid() == 0 else os.getuid())
    finally:
        p.close()
