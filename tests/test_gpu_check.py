"""scripts/gpu_check.sh and its summary table (scripts/gpu_check_summary.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = ROOT / "scripts" / "gpu_check_summary.py"
CHECK = ROOT / "scripts" / "gpu_check.sh"

# The figures of issue 12's H200 runs, in the files the benchmarks write (their --json)
LEARNER = {"model": "qwen3-1.7b", "precision": "bf16", "device": "NVIDIA H200", "world": 1, "seq_len": 2048,
           "rows": 8, "steps": 8,
           "results": [{"stage": 2, "params": 2031739904, "step_s": 0.6765, "tokens_per_s": 24219.4,
                        "tflops_per_device": 284.04, "peak_mem_gib": 68.46, "mfu": 0.28720}]}
RLP = {"model": "qwen2.5-0.5b", "params": 358_000_000, "device": "NVIDIA H200", "precision": "bf16",
       "contexts": 64, "group": 8, "thought_tokens": 128, "steps": 3, "warmup": 1,
       "step_s": 9.42, "generate_s": 6.66, "score_s": 0.44, "update_s": 2.28, "tokens_per_s": 12000.0,
       "thought_len_mean": 128.0, "peak_mem_gib": 20.31, "decode_tokens_per_s": 9838.3}


def run_summary(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SUMMARY), str(out)], capture_output=True, text=True, timeout=60)


def junit_report(tmp_path: Path) -> Path:
    """A real pytest JUnit report of 2 passed, 1 failed, 1 skipped tests."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_few.py").write_text(
        "import pytest\n"
        "def test_a(): pass\n"
        "def test_b(): pass\n"
        "def test_c(): assert 1 == 2\n"
        "@pytest.mark.skip(reason='no')\n"
        "def test_d(): pass\n")
    report = tmp_path / "pytest.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite),
                    f"--junitxml={report}"], capture_output=True, text=True, cwd=suite, timeout=120)
    return report


def rows(table: str) -> dict[str, str]:
    cells = [line.strip("| ").split(" | ") for line in table.splitlines() if line.startswith("|")]
    return {c[0]: c[1] for c in cells[2:]}


def test_summary_formats_each_stage(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stages.tsv").write_text("install\t0\t41\ngpu_suite\t1\t180\nlearner_bench\t0\t75\nrlp_bench\t0\t62\n")
    (out / "machine.json").write_text(json.dumps({"device": "NVIDIA H200", "torch": "2.11.0+cu130",
                                                  "python": "3.12.3"}))
    (out / "pytest.xml").write_bytes(junit_report(tmp_path).read_bytes())
    (out / "learner.json").write_text(json.dumps(LEARNER))
    (out / "rlp_step.json").write_text(json.dumps(RLP))

    result = run_summary(out)
    assert result.returncode == 1, result.stderr  # the GPU suite's stage failed
    table = rows(result.stdout)
    assert table["machine"] == "NVIDIA H200, torch 2.11.0+cu130, Python 3.12.3"
    assert table["stage install"] == "ok, 41 s"
    assert table["stage gpu_suite"] == "FAILED (exit 1), 180 s"
    assert table["GPU suite (pytest -m gpu)"] == "2 passed, 1 failed, 1 skipped"
    learner = table["learner: qwen3-1.7b bf16, ZeRO-2, 8 x 2048 tokens per step, 1 x NVIDIA H200"]
    assert learner == "24,219 tok/s, 284.0 TFLOP/s, MFU 28.7%, peak 68.5 GiB"
    rlp = table["RLP step: qwen2.5-0.5b body (358.0M, random init), bf16, 64 contexts x G=8, 128-token thoughts"]
    # 6.66 / 9.42 = 70.7%, 0.44 / 9.42 = 4.7%, 2.28 / 9.42 = 24.2%
    assert rlp == ("step 9.42 s = generate 6.66 (71%) + score 0.44 (5%) + update 2.28 (24%); "
                   "decode 9,838 tok/s; peak 20.3 GiB")


def test_summary_shows_what_finished(tmp_path):
    (tmp_path / "stages.tsv").write_text("install\t0\t3\nlearner_bench\t124\t300\n")
    result = run_summary(tmp_path)
    assert result.returncode == 1
    table = rows(result.stdout)
    assert table["stage learner_bench"] == "FAILED (exit 124), 300 s"
    assert table["stage gpu_suite"] == "not run"
    assert table["stage rlp_bench"] == "not run"


def test_summary_bad_folder(tmp_path):
    result = run_summary(tmp_path / "missing")
    assert result.returncode == 2
    assert "is not a folder" in result.stderr


def test_gpu_check_refuses_unknown_flag_and_a_cpu_machine(tmp_path):
    env = {**os.environ, "GPU_CHECK_OUT": str(tmp_path / "out"), "PYTHON": sys.executable}
    bad = subprocess.run(["bash", str(CHECK), "--fast"], capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "usage: bash scripts/gpu_check.sh [--dry-run]" in bad.stderr
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    cpu = subprocess.run(["bash", str(CHECK)], capture_output=True, text=True, env=env, timeout=120)
    assert cpu.returncode == 1 and "torch sees no CUDA device here" in cpu.stderr


def test_gpu_check_stops_at_its_budget_and_still_prints_the_table(tmp_path):
    env = {**os.environ, "GPU_CHECK_OUT": str(tmp_path / "out"), "PYTHON": sys.executable,
           "WHEELHOUSE": str(tmp_path / "no-wheelhouse"), "GPU_CHECK_BUDGET_S": "0"}
    result = subprocess.run(["bash", str(CHECK), "--dry-run"], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 1
    assert "stage install FAILED: no time left of the 0 s budget" in result.stdout
    table = rows(result.stdout[result.stdout.index("=== gpu_check: summary"):])
    for stage in ("install", "learner_bench", "rlp_bench", "gpu_suite"):
        assert table[f"stage {stage}"] == "FAILED (exit 124), 0 s"


@pytest.mark.slow
def test_gpu_check_dry_run_prints_the_table(tmp_path):
    out = tmp_path / "out"
    # a fresh single-rank rendezvous for DeepSpeed (tests earlier in this process may have set one)
    rendezvous = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    env = {**{k: v for k, v in os.environ.items() if k not in rendezvous}, "GPU_CHECK_OUT": str(out),
           "PYTHON": sys.executable, "PYTHONPATH": str(ROOT), "WHEELHOUSE": str(tmp_path / "no-wheelhouse")}
    result = subprocess.run(["bash", str(CHECK), "--dry-run"], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = rows(result.stdout[result.stdout.index("=== gpu_check: summary"):])
    for stage in ("install", "gpu_suite", "learner_bench", "rlp_bench"):
        assert table[f"stage {stage}"].startswith("ok, "), table
    learner = json.loads((out / "learner.json").read_text())["results"]
    assert [r["variant"] for r in learner] == ["baseline", "fused"]
    rlp = json.loads((out / "rlp_step.json").read_text())
    assert rlp["contexts"] == 4 and rlp["group"] == 2 and rlp["thought_len_mean"] <= 8
    # the table shows the benchmarks' own numbers
    for r in learner:  # one row per variant, each with its own figures
        row = table[f"learner: tiny fp32, ZeRO-2, {r['variant']}, 4 x 64 tokens per step, 1 x cpu"]
        assert row.startswith(f"{r['tokens_per_s']:,.0f} tok/s")
    rlp_row = next(v for k, v in table.items() if k.startswith("RLP step: tiny body"))
    assert rlp_row.startswith(f"step {rlp['step_s']:.2f} s = generate {rlp['generate_s']:.2f}")


def test_wheelhouse_refuses_a_folder_of_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("not a wheel")
    result = subprocess.run(["bash", str(ROOT / "scripts" / "wheelhouse.sh"), str(tmp_path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "holds more than wheels" in result.stderr
    assert (tmp_path / "notes.txt").exists()
