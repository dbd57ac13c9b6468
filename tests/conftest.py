"""Shared fixtures: a small embedded model built once per session, and composed Hydra configs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from rlpretrain.cli import CONF_DIR
from rlpretrain.config import register_configs

# A cheaper build than the quickstart's (same recipe): enough for pipeline tests, seconds to build.
SMALL_MODEL = [
    "model.embedded.warmup_steps=60", "model.embedded.corpus_docs=800", "model.embedded.hidden_size=64",
    "model.embedded.num_heads=2", "model.embedded.num_layers=2", "model.embedded.intermediate_size=128",
]


def pytest_collection_modifyitems(config, items):
    """`gpu`-marked tests need CUDA: skipped, with the reason, where torch sees none."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device: torch.cuda.is_available() is False")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


def compose_cfg(*overrides: str):
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def small_run(model_cache: Path, run_dir: Path) -> list[str]:
    """The overrides of a few-step RLP run on the small model (for compose_cfg or the command line)."""
    return [*SMALL_MODEL, f"model.cache_dir={model_cache}", f"run_dir={run_dir}",
            "trainer.max_steps=4", "method.contexts_per_step=4", "method.group_size=3",
            "rollout.max_new_tokens=8", "data.num_docs=50", "tracking.progress=false", "tracking.tensorboard=false"]


@pytest.fixture
def small_cfg(model_cache, tmp_path):
    """A config factory for a few-step RLP run on the small model, in this test's tmp dir."""

    def make(*overrides: str, run_dir: Path | None = None):
        return compose_cfg(*small_run(model_cache, run_dir or tmp_path / "run"), *overrides)

    return make


@pytest.fixture(scope="session")
def small_model(model_cache):
    """(tokenizer, model) of the small embedded model, loaded through the real loading code."""
    import torch

    from rlpretrain.models.loading import load_model_and_tokenizer

    cfg = compose_cfg(*SMALL_MODEL, f"model.cache_dir={model_cache}")
    return load_model_and_tokenizer(cfg.model, torch.device("cpu"))


@pytest.fixture(scope="session")
def smol_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("smol-cache")


@pytest.fixture(scope="session")
def smol(smol_cache):
    """(cfg, tokenizer, model) of SmolLM2-135M-Instruct, converted once per session from the packaged GGUF."""
    import torch

    from rlpretrain.models.loading import load_model_and_tokenizer

    cfg = compose_cfg("model=smollm2_135m", f"model.cache_dir={smol_cache}")
    tokenizer, model = load_model_and_tokenizer(cfg.model, torch.device("cpu"))
    return cfg, tokenizer, model
