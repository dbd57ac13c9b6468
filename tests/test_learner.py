"""The torch learner: micro-batching by tokens equals one full batch; schedules; precision."""

import copy
import math
from types import SimpleNamespace

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from rlpretrain.algorithms.objectives import NextTokenObjective
from rlpretrain.learner.microbatch import pad_right, split_by_tokens
from rlpretrain.learner.schedules import LR_SCHEDULES
from rlpretrain.learner.torch import TorchLearner


def _cfg(**kw):
    base = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, lr_schedule="constant", warmup_steps=0,
                min_lr_ratio=0.0, grad_clip=0.0, max_tokens_per_micro_batch=10_000, micro_batch_min_fill=0.0,
                precision="fp32")
    return SimpleNamespace(**{**base, **kw})


def _model():
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64))


def _batch():
    g = torch.Generator().manual_seed(1)
    rows = [torch.randint(0, 50, (n,), generator=g).tolist() for n in (12, 5, 9, 16, 3, 7)]
    loss_rows = [[0] * 2 + [1] * (len(r) - 2) for r in rows]
    return {"input_ids": pad_right(rows, 0), "attention_mask": pad_right([[1] * len(r) for r in rows], 0),
            "loss_mask": pad_right(loss_rows, 0, dtype=torch.float32)}


def test_split_respects_budget_and_keeps_rows():
    batch = _batch()
    micro = split_by_tokens(batch, max_tokens=20, min_fill=0.5)
    assert sum(m["input_ids"].shape[0] for m in micro) == 6
    for m in micro:
        assert m["input_ids"].shape[0] * m["input_ids"].shape[1] <= 20 or m["input_ids"].shape[0] == 1
        lengths = m["attention_mask"].sum(1)
        assert m["input_ids"].shape[1] == int(lengths.max())
        assert len(lengths) == 1 or int(lengths.min()) >= 0.5 * int(lengths.max())  # similar lengths together
    # every row lands in exactly one micro-batch, unchanged up to its own length
    seen = sorted(tuple(r[:int(a.sum())].tolist()) for m in micro for r, a in zip(m["input_ids"], m["attention_mask"]))
    assert seen == sorted(tuple(r[:int(a.sum())].tolist()) for r, a in zip(batch["input_ids"], batch["attention_mask"]))


@pytest.mark.parametrize("agg", ["token_mean", "seq_mean_token_mean"])
def test_micro_batching_equals_full_batch(agg):
    full, split = _model(), _model()
    # eps=1 makes Adam's step ~ lr·g, so rounding noise in tiny gradients cannot flip an update's sign
    a = TorchLearner(_cfg(eps=1.0), full, total_steps=1)
    b = TorchLearner(_cfg(eps=1.0, max_tokens_per_micro_batch=20, micro_batch_min_fill=0.5), split, total_steps=1)
    sa = a.train_step(_batch(), NextTokenObjective(agg))
    sb = b.train_step(_batch(), NextTokenObjective(agg))
    assert sb["micro_batches"] > 1 and sa["micro_batches"] == 1
    assert math.isclose(sa["ntp_loss"], sb["ntp_loss"], rel_tol=1e-5)
    # the pre-clip gradient norm catches a wrong normaliser (Adam's first step would hide it)
    assert math.isclose(sa["grad_norm"], sb["grad_norm"], rel_tol=1e-5)
    for p, q in zip(full.parameters(), split.parameters()):
        assert torch.allclose(p, q, atol=1e-7)


def test_grad_clip_and_version():
    model = _model()
    learner = TorchLearner(_cfg(grad_clip=1e-3), model, total_steps=3)
    before = copy.deepcopy(model.state_dict())
    stats = learner.train_step(_batch(), NextTokenObjective())
    assert learner.version == 1 and stats["grad_norm"] > 1e-3  # reported norm is the pre-clip norm
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bf16_autocast_step_runs():
    learner = TorchLearner(_cfg(precision="bf16"), _model(), total_steps=1)
    assert math.isfinite(learner.train_step(_batch(), NextTokenObjective())["ntp_loss"])
    with pytest.raises(ValueError, match="learner.precision must be fp32 or bf16, got 'fp8'"):
        TorchLearner(_cfg(precision="fp8"), _model(), total_steps=1)


def test_schedules():
    cos = LR_SCHEDULES.get("cosine")
    assert cos(0, 100, 10, 0.1) == pytest.approx(0.1)  # warmup 1/10
    assert cos(10, 100, 10, 0.1) == pytest.approx(1.0)
    assert cos(55, 100, 10, 0.1) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the decay
    assert cos(100, 100, 10, 0.1) == pytest.approx(0.1)
    assert LR_SCHEDULES.get("constant")(5, 100, 0, 0.0) == 1.0
    assert LR_SCHEDULES.get("constant")(1, 100, 4, 0.0) == 0.5
    with pytest.raises(KeyError, match="unknown lr schedule 'linear'; available: constant, cosine"):
        LR_SCHEDULES.get("linear")
