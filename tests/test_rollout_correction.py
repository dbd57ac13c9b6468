"""Rollout-learner mismatch: the metrics and the TIS/MIS weights against hand computations, and a bf16
engine beside an fp32 learner, whose correction moves the loss exactly as the formula says."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from omegaconf import OmegaConf

from rlpretrain.algorithms.rollout_correction import importance_weights, mismatch_and_weights
from rlpretrain.algorithms.update import PolicyUpdate
from rlpretrain.algorithms.config import AlgorithmConfig
from rlpretrain.learner.config import LearnerConfig
from rlpretrain.rollout.config import RolloutConfig
from rlpretrain.learner.torch import TorchLearner
from rlpretrain.rollout.base import SamplingParams
from rlpretrain.rollout.batch import RolloutBatch
from rlpretrain.rollout.hf import HFEngine

# two rows, position 0 is a prompt token; δ = old − sampling per completion token
OLD = [[0.0, -1.0, -2.0, -0.5], [0.0, -0.3, -4.0, 0.0]]
SAMPLING = [[0.0, -1.5, -1.0, -0.6], [0.0, -0.2, -3.0, 0.0]]
MASK = [[0, 1, 1, 1], [0, 1, 1, 0]]


def _deltas(row):
    return [OLD[row][t] - SAMPLING[row][t] for t in range(4) if MASK[row][t]]


def _hand_weight(ratio, correction, cap):
    if correction == "tis":
        return min(ratio, cap)
    return ratio if ratio <= cap else 0.0


@pytest.mark.parametrize("correction", ["tis", "mis"])
@pytest.mark.parametrize("level", ["token", "sequence"])
def test_weights_against_hand_numbers(correction, level):
    cap = 1.5  # token level: row 0's first token (ratio e^0.5 = 1.65) is over it
    weights, capped = importance_weights(torch.tensor(OLD) - torch.tensor(SAMPLING), torch.tensor(MASK),
                                         correction, level, cap)
    for row in range(2):
        deltas = _deltas(row)
        # token: exp(δ_t) per token; sequence: exp(Σ_t δ_t), the product of the token ratios, on every token
        ratios = [math.exp(d) for d in deltas] if level == "token" else [math.exp(sum(deltas))] * len(deltas)
        got = [float(weights[row, t]) for t in range(4) if MASK[row][t]]
        assert got == pytest.approx([_hand_weight(r, correction, cap) for r in ratios], rel=1e-6)
        assert [bool(capped[row, t]) for t in range(4) if MASK[row][t]] == [r > cap for r in ratios]
    assert float(weights[torch.tensor(MASK) == 0].abs().sum()) == 0.0
    if level == "token":  # the one number worked by hand: δ = -1 − (-1.5) = 0.5, over the cap
        assert float(weights[0, 1]) == pytest.approx(1.5 if correction == "tis" else 0.0)


def test_sequence_cap_hits_whole_rows():
    old = torch.tensor([[0.0, 0.5, 0.5], [0.0, 0.1, 0.1]])
    mask = torch.tensor([[0, 1, 1], [0, 1, 1]])
    # row 0: ratio e^1 = 2.72 > 2 (capped), row 1: e^0.2 = 1.22
    tis, capped = importance_weights(old, mask, "tis", "sequence", 2.0)
    assert tis[0, 1:].tolist() == pytest.approx([2.0, 2.0]) and tis[1, 1:].tolist() == pytest.approx([math.exp(0.2)] * 2)
    assert capped.tolist() == [[False, True, True], [False, False, False]]
    mis, _ = importance_weights(old, mask, "mis", "sequence", 2.0)
    assert mis[0].tolist() == [0.0, 0.0, 0.0] and mis[1, 1:].tolist() == pytest.approx([math.exp(0.2)] * 2)


def test_metrics_against_hand_numbers():
    cfg = OmegaConf.structured(AlgorithmConfig(rollout_correction="tis", rollout_correction_cap=1.5))
    tensors = {"loss_mask": torch.tensor(MASK, dtype=torch.float32), "sampling_logprobs": torch.tensor(SAMPLING)}
    stats = mismatch_and_weights(cfg, tensors, torch.tensor(OLD))
    deltas = _deltas(0) + _deltas(1)
    # k3 of KL(sampler ‖ learner) with r = π_learner / π_sampler = e^δ: r − 1 − log r
    assert stats["mismatch/kl"] == pytest.approx(sum(math.exp(d) - 1 - d for d in deltas) / len(deltas), rel=1e-6)
    assert stats["mismatch/abs_logp_diff_mean"] == pytest.approx(sum(abs(d) for d in deltas) / len(deltas), rel=1e-6)
    weights = [min(math.exp(d), 1.5) for d in deltas]
    assert stats["mismatch/is_weight_mean"] == pytest.approx(sum(weights) / len(weights), rel=1e-6)
    assert stats["mismatch/capped_frac"] == pytest.approx(sum(math.exp(d) > 1.5 for d in deltas) / len(deltas))
    assert tensors["rollout_is_weights"].shape == (2, 4)


# --- a bf16 engine beside the fp32 learner ----------------------------------------------------

TEMPERATURE = 0.8
REWARDS = [1.0, 0.0, 0.5, 2.0, -1.0, 0.25, 0.75, 1.5, -0.5]  # 3 prompts x 3 samples


@pytest.fixture(scope="module")
def bf16_rollout(small_model):
    """(tokenizer, fp32 model, prompts, completions) with completions sampled by a bf16 copy in the HF engine."""
    tokenizer, model = small_model
    engine = HFEngine(OmegaConf.structured(RolloutConfig()), copy.deepcopy(model).to(torch.bfloat16), tokenizer)
    think = tokenizer.convert_tokens_to_ids("<think>")
    prompts = [tokenizer(t)["input_ids"] + [think] for t in ["12+34=46\n5+7=", "305+18=", "7+8=15\n61+9="]]
    out = engine.generate(prompts, SamplingParams(max_new_tokens=8, temperature=TEMPERATURE, n=3, seed=4))
    return tokenizer, model, prompts, [c for samples in out for c in samples]


def _batch(prompts, completions, with_logprobs=True):
    return RolloutBatch(prompt_ids=[p for p in prompts for _ in range(3)], completion_ids=[c.token_ids for c in completions],
                        sampling_logprobs=[c.logprobs if with_logprobs else [] for c in completions],
                        finish_reasons=[c.finish_reason for c in completions], rewards=list(REWARDS),
                        group=[g for g in range(3) for _ in range(3)], policy_version=0)


def _update(model, lr=0.0, **algorithm):
    learner = TorchLearner(OmegaConf.structured(LearnerConfig(lr=lr, grad_clip=0.0)), copy.deepcopy(model), total_steps=1)
    return PolicyUpdate(OmegaConf.structured(AlgorithmConfig(**algorithm)), learner, pad_id=0,
                        temperature=TEMPERATURE, total_steps=1)


@torch.no_grad()
def _independent(model, prompts, completions):
    """Per row: the fp32 learner's log-probs of the sampled tokens (one plain forward per row), the
    engine's, and the RLOO advantage (reward minus the mean of the other samples of its prompt)."""
    rows = []
    for i, c in enumerate(completions):
        p = prompts[i // 3]
        logits = model(input_ids=torch.tensor([p + c.token_ids])).logits[0, len(p) - 1:-1].float() / TEMPERATURE
        learner = torch.log_softmax(logits, -1).gather(-1, torch.tensor(c.token_ids)[:, None]).squeeze(-1).tolist()
        others = [REWARDS[j] for j in range(3 * (i // 3), 3 * (i // 3) + 3) if j != i]
        rows.append((learner, c.logprobs, REWARDS[i] - sum(others) / len(others)))
    return rows


def _hand_loss(rows, correction, level, cap):
    """On-policy ppo_clip (ratio 1, nothing clipped) with seq_mean_token_mean: mean_i mean_t −A_i·w_it."""
    total = 0.0
    for learner, sampling, adv in rows:
        deltas = [a - b for a, b in zip(learner, sampling)]
        if correction == "none":
            weights = [1.0] * len(deltas)
        elif level == "token":
            weights = [_hand_weight(math.exp(d), correction, cap) for d in deltas]
        else:
            weights = [_hand_weight(math.exp(sum(deltas)), correction, cap)] * len(deltas)
        total += sum(-adv * w for w in weights) / len(weights)
    return total / len(rows)


def _cap_between(ratios):
    """A cap strictly between two observed ratios above 1, so some are capped and some not, none at the edge."""
    above = sorted(r for r in ratios if r > 1)
    k = len(above) // 2
    return math.sqrt(above[k - 1] * above[k])


@pytest.mark.parametrize("correction", ["tis", "mis"])
@pytest.mark.parametrize("level", ["token", "sequence"])
def test_bf16_engine_mismatch_and_correction(bf16_rollout, correction, level):
    _, model, prompts, completions = bf16_rollout
    rows = _independent(model, prompts, completions)
    deltas = [a - b for learner, sampling, _ in rows for a, b in zip(learner, sampling)]
    if level == "token":
        ratios = [math.exp(d) for d in deltas]
    else:
        ratios = [math.exp(sum(a - b for a, b in zip(learner, sampling))) for learner, sampling, _ in rows]
    cap = _cap_between(ratios)
    stats = _update(model, rollout_correction=correction, rollout_correction_level=level,
                    rollout_correction_cap=cap)(_batch(prompts, completions))
    # the engine in bf16 really samples from another distribution than the fp32 learner
    assert max(abs(d) for d in deltas) > 1e-3
    assert stats["mismatch/kl"] == pytest.approx(sum(math.expm1(d) - d for d in deltas) / len(deltas), rel=1e-3)
    assert stats["mismatch/abs_logp_diff_mean"] == pytest.approx(sum(abs(d) for d in deltas) / len(deltas), rel=1e-3)
    assert 0 < stats["mismatch/capped_frac"] < 1
    corrected, plain = _hand_loss(rows, correction, level, cap), _hand_loss(rows, "none", level, cap)
    print(f"{correction}/{level}: kl {stats['mismatch/kl']:.2e}, |dlogp| {stats['mismatch/abs_logp_diff_mean']:.2e}, "
          f"cap {cap:.4f}, capped {stats['mismatch/capped_frac']:.2f}, loss {plain:+.5f} -> {stats['pg_loss']:+.5f}")
    assert abs(corrected - plain) > 1e-4  # the correction matters here ...
    assert stats["pg_loss"] == pytest.approx(corrected, rel=1e-4, abs=1e-6)  # ... exactly as its formula says


def test_none_keeps_the_loss_and_step_identical(bf16_rollout):
    _, model, prompts, completions = bf16_rollout
    logged, before = _update(model, lr=1e-2), _update(model, lr=1e-2)
    with_lp = logged(_batch(prompts, completions))
    without = before(_batch(prompts, completions, with_logprobs=False))  # the batch as it was before this column
    assert "mismatch/kl" in with_lp and "mismatch/kl" not in without and "mismatch/is_weight_mean" not in with_lp
    for key in ("pg_loss", "grad_norm"):
        assert with_lp[key] == without[key]
    for p, q in zip(logged.learner.module.parameters(), before.learner.module.parameters()):
        assert torch.equal(p, q)


def test_correction_needs_sampling_logprobs(bf16_rollout):
    _, model, prompts, completions = bf16_rollout
    with pytest.raises(ValueError, match=r"rollout_correction=mis needs the rollout engine's sampling log-probs.*"
                                         r"did not report them"):
        _update(model, rollout_correction="mis")(_batch(prompts, completions, with_logprobs=False))


@pytest.mark.parametrize("overrides, message", [
    ({"rollout_correction": "is"}, "algorithm.rollout_correction must be one of none, tis, mis, got 'is'"),
    ({"rollout_correction": "tis", "rollout_correction_cap": 1.0}, "algorithm.rollout_correction_cap must be > 1"),
    ({"rollout_correction_cap": 0.5}, r"must be > 1 .*got 0.5"),
    ({"rollout_correction_level": "batch"}, "algorithm.rollout_correction_level must be one of token, sequence, got 'batch'"),
])
def test_bad_config(small_model, overrides, message):
    with pytest.raises(ValueError, match=message):
        _update(small_model[1], **overrides)
