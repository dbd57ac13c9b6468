#!/usr/bin/env bash
# Check a CUDA machine that already has torch: install the project's other dependencies, run the
# two GPU benchmarks and the GPU suite, print one summary table (docs/scale.md, "Checking a GPU
# machine"). Sized for under 8 minutes on one H100/H200.
#
#   bash scripts/gpu_check.sh             # on the GPU machine, from the repository root
#   bash scripts/gpu_check.sh --dry-run   # the same pipeline on the CPU, tiny shapes; installs nothing
#
# Dependencies come from ./wheelhouse (or $WHEELHOUSE) when it exists, made beforehand by
# scripts/wheelhouse.sh on a machine with internet; otherwise from PyPI. The installed torch is
# pinned, so pip fails rather than replace it. Every stage runs even if one before it failed; the
# exit status is non-zero if any did, and the table names it. A stage is stopped when the check's
# time budget ($GPU_CHECK_BUDGET_S, default 470 s; 1200 s with --dry-run) runs out. Outputs and
# logs: $GPU_CHECK_OUT (default runs/gpu_check).
set -uo pipefail
cd "$(dirname "$0")/.."

DRY_RUN=0
case "${1:-}" in
  "") ;;
  --dry-run) DRY_RUN=1 ;;
  *) echo "usage: bash scripts/gpu_check.sh [--dry-run]" >&2; exit 2 ;;
esac

PYTHON=${PYTHON:-python3}
WHEELHOUSE=${WHEELHOUSE:-wheelhouse}
OUT=${GPU_CHECK_OUT:-runs/gpu_check}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
# only this script's own files: $GPU_CHECK_OUT may be a folder that holds other things
rm -f "$OUT"/{stages.tsv,machine.json,torch-pin.txt,constraints-gpu.txt,pytest.xml,learner.json,rlp_step.json,*.log}
export PYTHONUNBUFFERED=1 DS_BUILD_OPS=0 HF_HUB_OFFLINE=1

# the whole check's time: a stage gets at most what is left of it (GPU_CHECK_BUDGET_S)
BUDGET=${GPU_CHECK_BUDGET_S:-$([ "$DRY_RUN" = 1 ] && echo 1200 || echo 470)}
BENCH_S=$([ "$DRY_RUN" = 1 ] && echo 600 || echo 200)  # each benchmark's own limit (the CPU is slower)

# stage NAME TIMEOUT_S CMD...: runs CMD, logs it to $OUT/NAME.log, records "NAME rc seconds"
stage() {
  local name=$1 limit=$2; shift 2
  local left=$((BUDGET - SECONDS))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -le 0 ]; then
    echo "=== gpu_check: stage $name FAILED: no time left of the ${BUDGET} s budget"
    printf '%s\t124\t0\n' "$name" >>"$OUT/stages.tsv"
    return
  fi
  echo "=== gpu_check: $name ($*)"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 124 ] && echo "=== gpu_check: $name stopped after its ${limit} s limit"
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" >>"$OUT/stages.tsv"
  [ "$rc" = 0 ] || echo "=== gpu_check: stage $name FAILED (exit $rc); see $OUT/$name.log"
}

"$PYTHON" - "$OUT/machine.json" <<'EOF'
import json, platform, sys
import torch
device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
json.dump({"device": device, "torch": torch.__version__, "python": platform.python_version()}, open(sys.argv[1], "w"))
EOF
if [ "$DRY_RUN" = 0 ] && ! "$PYTHON" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
  echo "gpu_check: torch sees no CUDA device here; on a CPU machine run it with --dry-run" >&2
  exit 1
fi

# --- install: everything the project needs beside torch, transformers and the CUDA libraries
TORCH_PIN="$OUT/torch-pin.txt"
"$PYTHON" -c 'import torch; print(f"torch=={torch.__version__}")' >"$TORCH_PIN"
PIP=("$PYTHON" -m pip install -c "$TORCH_PIN")
if [ -d "$WHEELHOUSE" ]; then
  PIP+=(--no-index --find-links "$WHEELHOUSE")
else
  echo "gpu_check: no $WHEELHOUSE folder; installing from PyPI"
  # the project's pins, less those of the packages the machine brings
  grep -v -E '^(torch|transformers|tokenizers|accelerate|peft|trl|ray)==' constraints.txt >"$OUT/constraints-gpu.txt"
  PIP+=(-c "$OUT/constraints-gpu.txt")
fi
# --dry-run: pip resolves against the wheelhouse (or PyPI) and installs nothing
[ "$DRY_RUN" = 1 ] && PIP+=(--dry-run)
# no build isolation: the editable build uses the machine's setuptools (offline-safe)
# on the GPU also Liger's kernels (the `gpu` extra: learner.liger_kernel, the fused variant below)
EXTRA=(); [ "$DRY_RUN" = 1 ] || EXTRA=("liger-kernel==0.8.5")
stage install 300 "${PIP[@]}" --no-build-isolation -e . "deepspeed>=0.17" "${EXTRA[@]}"

# --- the learner's throughput: qwen3-1.7b shape, bf16, 8 x 2048 tokens per step, ZeRO-2
if [ "$DRY_RUN" = 1 ]; then
  LEARNER=(--model tiny --precision fp32 --seq-len 64 --tokens 256 --micro-tokens 256 --steps 2 --warmup 1 --variants baseline fused)
  RLP=(--model tiny --precision fp32 --contexts 4 --group 2 --thought-tokens 8 --steps 2 --warmup 1)
else
  # the baseline, then the efficiency options that pay without flash-attention (docs/scale.md)
  LEARNER=(--model qwen3-1.7b --precision bf16 --seq-len 2048 --tokens 16384 --micro-tokens 8192 --steps 8 --warmup 3 --variants baseline fused)
  RLP=(--model qwen2.5-0.5b --precision bf16 --contexts 64 --group 8 --thought-tokens 128 --steps 3 --warmup 1)
fi
stage learner_bench "$BENCH_S" "$PYTHON" benchmarks/bench_learner_throughput.py --zero 2 "${LEARNER[@]}" --json "$OUT/learner.json"

# --- one RLP step's split: generate / score / update
stage rlp_bench "$BENCH_S" "$PYTHON" benchmarks/bench_rlp_step.py "${RLP[@]}" --json "$OUT/rlp_step.json"

# --- the GPU suite, last: it gets the rest of the budget (on the CPU every test in it is skipped)
stage gpu_suite 600 "$PYTHON" -m pytest -m gpu -q -rs -p no:cacheprovider tests --junitxml "$OUT/pytest.xml"

echo "=== gpu_check: summary ($OUT)"
"$PYTHON" scripts/gpu_check_summary.py "$OUT"
