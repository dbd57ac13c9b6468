"""Learner efficiency options (learner/efficiency.py): each gives the plain computation's numbers."""

from __future__ import annotations

import copy
import math
import random

import pytest
import torch
from omegaconf import OmegaConf
from transformers import Qwen3Config, Qwen3ForCausalLM

from rlpretrain.algorithms.chunked_logprobs import chunked_token_stats
from rlpretrain.algorithms.losses import entropy_from_logits, token_logprobs
from rlpretrain.algorithms.objectives import NextTokenObjective, PolicyGradientObjective
from rlpretrain.algorithms.update import frozen_copy, sequence_logprobs
from rlpretrain.algorithms.config import AlgorithmConfig
from rlpretrain.learner.config import LearnerConfig
from rlpretrain.learner.efficiency import apply_efficiency_options
from rlpretrain.learner.microbatch import packed_buckets, pad_right, split_by_tokens
from rlpretrain.learner.torch import TorchLearner
from rlpretrain.models.forward_options import forward_options
from rlpretrain.models.packing import pack_rows, padding_fraction
from rlpretrain.rollout.batch import RolloutBatch

VOCAB = 61


def _model(seed=0):
    torch.manual_seed(seed)
    return Qwen3ForCausalLM(Qwen3Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                        max_position_embeddings=64, tie_word_embeddings=True))


@pytest.mark.parametrize("chunk", [1, 7, 64, 0])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_chunked_stats_equal_full_logits_values_and_grads(chunk, temperature):
    g = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(16, VOCAB, bias=False)
    hidden = torch.randn(23, 16, generator=g, requires_grad=True)
    labels = torch.randint(0, VOCAB, (23,), generator=g)
    weights = torch.randn(23, generator=g)  # a loss that mixes both outputs, each token weighted differently

    logp, entropy = chunked_token_stats(hidden, head, labels, temperature, chunk, with_entropy=True)
    ((logp + 0.3 * entropy) * weights).sum().backward()
    got_grads = hidden.grad.clone(), head.weight.grad.clone()
    hidden.grad, head.weight.grad = None, None

    logits = head(hidden).float()  # the plain path: the whole [T, V] logits
    full_logp, full_entropy = token_logprobs(logits, labels, temperature), entropy_from_logits(logits, temperature)
    ((full_logp + 0.3 * full_entropy) * weights).sum().backward()
    assert torch.allclose(logp, full_logp, atol=1e-6)
    assert torch.allclose(entropy, full_entropy, atol=1e-6)
    assert torch.allclose(got_grads[0], hidden.grad, atol=1e-6)
    assert torch.allclose(got_grads[1], head.weight.grad, atol=1e-6)


def test_pack_rows_places_each_token_and_restarts_positions():
    ids = torch.tensor([[5, 6, 7, 0], [8, 0, 0, 0], [9, 10, 11, 12]])
    mask = (torch.arange(4)[None] < torch.tensor([3, 1, 4])[:, None]).long()
    packed, positions, index = pack_rows(ids, mask)
    assert packed.tolist() == [[5, 6, 7, 8, 9, 10, 11, 12]]
    assert positions.tolist() == [[0, 1, 2, 0, 0, 1, 2, 3]]
    assert index[mask.bool()].tolist() == list(range(8))
    assert padding_fraction(mask) == 1 - 8 / 12


def test_packed_buckets_fill_the_budget_with_real_tokens():
    lengths = [30, 5, 12, 60, 8, 25, 3, 90]
    buckets = packed_buckets(lengths, max_tokens=64)
    assert sorted(i for b in buckets for i in b) == list(range(len(lengths)))
    assert [sum(lengths[i] for i in b) for b in buckets] == [90, 63, 63, 17]  # first-fit decreasing: [90] [60 3] [30 25 8] [12 5]
    micro = split_by_tokens({"attention_mask": pad_right([[1] * n for n in lengths], 0)}, 64, packed=True)
    assert [int(m["attention_mask"].sum()) for m in micro] == [90, 63, 63, 17]


def test_packed_forward_equals_padded_forward_per_token():
    model = _model().eval()
    rows = [[3, 4, 5, 6, 7, 8], [9, 10], [11, 12, 13, 14]]
    ids, mask = pad_right(rows, 0), pad_right([[1] * len(r) for r in rows], 0)
    packed, positions, index = pack_rows(ids, mask)
    with torch.no_grad():
        padded = model(input_ids=ids, attention_mask=mask).logits
        flat = model(input_ids=packed, position_ids=positions, use_cache=False).logits[0]  # as token_stats runs it
    for i, row in enumerate(rows):
        for j in range(len(row)):
            assert torch.allclose(flat[index[i, j]], padded[i, j], atol=1e-5), (i, j)


def _ragged_batch(seed=1, with_prompts=False):
    """An RL batch: prompts of several lengths, 3 completions each, per-sequence advantages."""
    rng = random.Random(seed)
    prompts, completions, group = [], [], []
    for k in range(4):
        prompt = [rng.randrange(1, VOCAB) for _ in range(rng.randrange(2, 12))]
        for _ in range(3):
            prompts.append(prompt)
            completions.append([rng.randrange(1, VOCAB) for _ in range(rng.randrange(1, 10))])
            group.append(k)
    batch = RolloutBatch(prompts, completions, [[0.0] * len(c) for c in completions], ["stop"] * len(prompts),
                         [0.0] * len(prompts), group, 0, advantages=[rng.gauss(0, 1) for _ in prompts])
    tensors = batch.to_tensors(pad_id=0)
    tensors["ref_logprobs"] = -torch.rand(tensors["input_ids"].shape, generator=torch.Generator().manual_seed(2))
    return tensors if with_prompts else {k: v for k, v in tensors.items() if k != "prompt_len"}


OPTIONS = [dict(logprob_chunk_tokens=5), dict(padding_free=True), dict(padding_free=True, logprob_chunk_tokens=4),
           dict(gradient_checkpointing=True), dict(gradient_checkpointing=True, logprob_chunk_tokens=3)]


def _step(options, tensors, objective, budget=10_000):
    model = _model()
    cfg = OmegaConf.structured(LearnerConfig(lr=1e-2, eps=1.0, grad_clip=0.0, micro_batch_min_fill=0.0,
                                             max_tokens_per_micro_batch=budget, **options))
    stats = TorchLearner(cfg, model, total_steps=1).train_step(dict(tensors), objective)
    return stats, model


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("with_prompts", [False, True], ids=["rows", "shared-prompts"])
@pytest.mark.parametrize("budget", [60, 10_000], ids=["micro-batches", "one-batch"])
def test_policy_step_with_option_equals_plain(options, with_prompts, budget):
    """Loss, KL, entropy, grad norm and the updated weights: as without the option."""
    algorithm = OmegaConf.structured(AlgorithmConfig(entropy_coef=0.01, kl_coef=0.05))
    objective = PolicyGradientObjective(algorithm, temperature=0.7)
    tensors = _ragged_batch(with_prompts=with_prompts)
    want, plain_model = _step({}, tensors, objective, budget)
    got, model = _step(options, tensors, objective, budget)
    # kl and entropy are token means per micro-batch, combined by sequence share: comparable only
    # in one micro-batch (packed micro-batches are filled by real tokens, so they split differently)
    for key in ("pg_loss", "grad_norm") + (("kl", "entropy") if budget > 1000 else ()):
        assert math.isclose(got[key], want[key], rel_tol=1e-5, abs_tol=1e-7), (key, got[key], want[key])
    for p, q in zip(model.parameters(), plain_model.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


@pytest.mark.parametrize("options", OPTIONS[:3], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_next_token_step_with_option_equals_plain(options):
    rows = [[random.Random(n).randrange(1, VOCAB) for _ in range(n)] for n in (14, 3, 9, 12, 5)]
    tensors = {"input_ids": pad_right(rows, 0), "attention_mask": pad_right([[1] * len(r) for r in rows], 0),
               "loss_mask": pad_right([[0] + [1] * (len(r) - 1) for r in rows], 0, dtype=torch.float32)}
    want, _ = _step({}, tensors, NextTokenObjective())
    got, _ = _step(options, tensors, NextTokenObjective())
    for key in ("ntp_loss", "grad_norm"):
        assert math.isclose(got[key], want[key], rel_tol=1e-5), (key, got[key], want[key])


@pytest.mark.parametrize("options", OPTIONS[:3], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_sequence_logprobs_with_option_equal_plain(options):
    """The reference / old log-probs path: every real token after the first, 0 elsewhere."""
    tensors = _ragged_batch()
    plain_model, model = _model(), _model()
    apply_efficiency_options(OmegaConf.structured(LearnerConfig(**options)), model)
    want = sequence_logprobs(plain_model, tensors, temperature=0.7, max_tokens=40)
    got = sequence_logprobs(model, tensors, temperature=0.7, max_tokens=40)
    real = (tensors["attention_mask"][:, 1:] != 0)
    assert torch.allclose(got[:, 1:][real], want[:, 1:][real], atol=1e-5)
    assert bool((got[:, 1:][~real] == 0).all())



def test_kl_reference_runs_the_learners_logprob_path():
    """The frozen KL reference is a fresh model: it must still get the chunked / packed path
    (otherwise its log-probs build the whole [tokens x vocab] logits the option exists to avoid)."""
    cfg = OmegaConf.structured(LearnerConfig(lr=1e-2, logprob_chunk_tokens=5, padding_free=True))
    learner = TorchLearner(cfg, _model(), total_steps=1)
    reference = frozen_copy(learner)
    assert forward_options(reference) == forward_options(learner.module)
    assert (forward_options(reference).logprob_chunk_tokens, forward_options(reference).padding_free) == (5, True)
    tensors = _ragged_batch()
    want = sequence_logprobs(_model(), tensors, temperature=0.7, max_tokens=40)
    got = sequence_logprobs(reference, tensors, temperature=0.7, max_tokens=40)
    real = tensors["attention_mask"][:, 1:] != 0  # the packed path leaves padding at 0
    assert torch.allclose(got[:, 1:][real], want[:, 1:][real], atol=1e-5)
    assert bool((got[:, 1:][~real] == 0).all())

def test_lora_model_with_options_equals_plain():
    """peft's wrapper: the options reach the model inside, and the LM head is found through it."""
    from rlpretrain.learner.config import LoraConfig
    from rlpretrain.learner.lora import apply_lora

    algorithm = OmegaConf.structured(AlgorithmConfig(entropy_coef=0.01))
    objective = PolicyGradientObjective(algorithm, temperature=0.7)
    tensors = _ragged_batch()
    results = []
    for options in ({}, {"logprob_chunk_tokens": 5, "padding_free": True}):
        model = apply_lora(_model(), OmegaConf.structured(LoraConfig(r=4)))
        cfg = OmegaConf.structured(LearnerConfig(lr=1e-2, eps=1.0, grad_clip=0.0, **options))
        stats = TorchLearner(cfg, model, total_steps=1).train_step(dict(tensors), objective)
        results.append((stats, [p.detach().clone() for p in model.parameters() if p.requires_grad]))
    (want, want_params), (got, got_params) = results
    for key in ("pg_loss", "entropy", "grad_norm"):
        assert math.isclose(got[key], want[key], rel_tol=1e-5), (key, got[key], want[key])
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(got_params, want_params))


@pytest.mark.parametrize("name, value, message", [
    ("logprob_chunk_tokens", -1, "learner.logprob_chunk_tokens must be an integer >= 0 (0: off), got -1"),
    ("padding_free", "yes", "learner.padding_free must be true or false, got 'yes'"),
])
def test_bad_option_values_are_refused(name, value, message):
    cfg = LearnerConfig()  # the dataclass itself: OmegaConf would refuse a wrong type first
    setattr(cfg, name, value)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply_efficiency_options(cfg, _model())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_liger_needs_cuda():
    with pytest.raises(ValueError, match="learner.liger_kernel needs the model on a CUDA device"):
        apply_efficiency_options(LearnerConfig(liger_kernel=True), _model())


@pytest.mark.slow
def test_compiled_layers_give_the_plain_step():
    """torch.compile of each decoder layer (inductor on the CPU: about a minute of compiling)."""
    rows = [[random.Random(n).randrange(1, VOCAB) for _ in range(n)] for n in (14, 3, 9)]
    tensors = {"input_ids": pad_right(rows, 0), "attention_mask": pad_right([[1] * len(r) for r in rows], 0),
               "loss_mask": pad_right([[0] + [1] * (len(r) - 1) for r in rows], 0, dtype=torch.float32)}
    want, plain_model = _step({}, tensors, NextTokenObjective())
    got, model = _step({"compile": True}, tensors, NextTokenObjective())
    assert all(layer._compiled_call_impl is not None for layer in model.model.layers)
    for key in ("ntp_loss", "grad_norm"):
        assert math.isclose(got[key], want[key], rel_tol=1e-5), (key, got[key], want[key])
    for p, q in zip(model.parameters(), plain_model.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


@pytest.mark.slow
def test_throughput_benchmark_measures_variants_against_the_baseline():
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    rendezvous = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")  # a fresh single rank
    env = {k: v for k, v in os.environ.items() if k not in rendezvous}
    proc = subprocess.run([sys.executable, "benchmarks/bench_learner_throughput.py", "--model", "tiny",
                           "--precision", "fp32", "--zero", "2", "--seq-len", "64", "--tokens", "256",
                           "--micro-tokens", "128", "--steps", "1", "--warmup", "1", "--peak-tflops", "1",
                           "--ragged", "--variants", "chunked", "packed"],
                          cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {m[1]: m for m in re.finditer(r"^(\w+) +[\d.]+ +([\d,]+) +[\d.]+ +([\d.]+)% +n/a +([\d.]+)$",
                                          proc.stdout, re.M)}
    assert sorted(rows) == ["baseline", "chunked", "packed"], proc.stdout
    tokens = {name: int(m[2].replace(",", "")) for name, m in rows.items()}
    assert all(t > 0 for t in tokens.values()), proc.stdout
    for name, m in rows.items():  # the ratio column: tok/s over the baseline's, same run
        assert math.isclose(float(m[4]), tokens[name] / tokens["baseline"], abs_tol=0.01 + 1 / tokens["baseline"])
