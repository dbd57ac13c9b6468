"""Each formula in rlpretrain/algorithms against an independent small computation (loops, hand numbers)."""

from __future__ import annotations

import copy
import math
import statistics

import pytest
import torch
import torch.nn.functional as F

from rlpretrain.algorithms import (
    ADVANTAGE_ESTIMATORS,
    KL_ESTIMATORS,
    LOSS_AGG_MODES,
    POLICY_LOSSES,
    PolicyValueHead,
    ValueModel,
    agg_denominator,
    agg_numerator,
    aggregate,
    entropy_from_logits,
    gae,
    gspo,
    kl_penalty,
    next_token_loss,
    ppo_clip,
    token_logprobs,
    trr_pp,
    value_loss,
)
from rlpretrain.config import AlgorithmConfig

# Non-contiguous groups of unequal sizes (7: 3 samples, 2: 4 samples, 5: 1 sample).
REWARDS = [1.0, 0.0, 0.5, 2.0, 1.0, -1.0, 3.0, 0.25]
GROUP = [7, 2, 7, 2, 5, 2, 7, 2]


def _tensors():
    return torch.tensor(REWARDS), torch.tensor(GROUP)


def _members(ids, i):
    return [REWARDS[j] for j in range(len(REWARDS)) if ids[j] == ids[i]]


# --- advantages ------------------------------------------------------------------------------

def test_rloo_equals_leave_one_out_baseline():
    adv = ADVANTAGE_ESTIMATORS.get("rloo")(*_tensors())
    for i, r in enumerate(REWARDS):
        others = [REWARDS[j] for j in range(len(REWARDS)) if GROUP[j] == GROUP[i] and j != i]
        expected = r - sum(others) / len(others) if others else 0.0
        assert adv[i].item() == pytest.approx(expected, abs=1e-6)


def test_grpo_hand_numbers():
    adv = ADVANTAGE_ESTIMATORS.get("grpo")(*_tensors(), eps=1e-6)
    # group 7: rewards 1.0, 0.5, 3.0
    g7 = [1.0, 0.5, 3.0]
    mean, std = statistics.mean(g7), statistics.stdev(g7)
    assert adv[0].item() == pytest.approx((1.0 - mean) / (std + 1e-6), abs=1e-6)
    assert adv[6].item() == pytest.approx((3.0 - mean) / (std + 1e-6), abs=1e-6)
    for i, r in enumerate(REWARDS):
        members = _members(GROUP, i)
        expected = (r - statistics.mean(members)) / (statistics.stdev(members) + 1e-6) if len(members) > 1 else 0.0
        assert adv[i].item() == pytest.approx(expected, abs=1e-5)
    assert adv[4].item() == 0.0  # a group of one


def test_grpo_equal_rewards_give_zero():
    adv = ADVANTAGE_ESTIMATORS.get("grpo")(torch.ones(4), torch.tensor([0, 0, 1, 1]))
    assert torch.equal(adv, torch.zeros(4))


def test_dr_grpo_is_group_centred_only():
    adv = ADVANTAGE_ESTIMATORS.get("dr_grpo")(*_tensors())
    for i, r in enumerate(REWARDS):
        assert adv[i].item() == pytest.approx(r - statistics.mean(_members(GROUP, i)), abs=1e-6)


def test_reinforce_pp_whitens_over_the_batch():
    adv = ADVANTAGE_ESTIMATORS.get("reinforce_pp")(*_tensors(), eps=1e-6)
    mean, std = statistics.mean(REWARDS), statistics.stdev(REWARDS)
    for i, r in enumerate(REWARDS):
        assert adv[i].item() == pytest.approx((r - mean) / (std + 1e-6), abs=1e-5)


def test_trr_pp_whitens_within_each_role():
    role = [0, 1, 1, 0, 2, 1, 0, 0]
    rewards, group = _tensors()
    adv = trr_pp(rewards, group, torch.tensor(role), eps=1e-6)
    for i, r in enumerate(REWARDS):
        members = _members(role, i)
        expected = (r - statistics.mean(members)) / (statistics.stdev(members) + 1e-6) if len(members) > 1 else 0.0
        assert adv[i].item() == pytest.approx(expected, abs=1e-5)


def test_trr_pp_without_role_is_a_clear_error():
    with pytest.raises(ValueError, match="trr_pp needs `role`"):
        trr_pp(*_tensors())


# Completion token counts for the token-weighted statistics.
LENGTHS = [3, 1, 4, 2, 5, 1, 2, 6]


def _token_expanded(ids, i):
    """The rewards of sample i's group with every sample repeated once per completion token: token
    weighting's statistics are the plain statistics of this list."""
    return [REWARDS[j] for j in range(len(REWARDS)) if ids[j] == ids[i] for _ in range(LENGTHS[j])]


def test_trr_pp_token_weighted_against_repeated_samples():
    role = [0, 1, 1, 0, 2, 1, 0, 0]
    rewards, group = _tensors()
    adv = trr_pp(rewards, group, torch.tensor(role), torch.tensor(LENGTHS), eps=1e-6, weighting="token")
    # role 1: rewards 0.0 (1 token), 0.5 (4 tokens), -1.0 (1 token): mean 1/6, by hand
    assert (0.0 * 1 + 0.5 * 4 - 1.0 * 1) / 6 == pytest.approx(statistics.mean(_token_expanded(role, 1)))
    for i, r in enumerate(REWARDS):
        members = _token_expanded(role, i)
        alone = sum(role[j] == role[i] for j in range(len(role))) == 1
        expected = 0.0 if alone else (r - statistics.mean(members)) / (statistics.stdev(members) + 1e-6)
        assert adv[i].item() == pytest.approx(expected, abs=1e-5)
    # differs from per-sample weighting on these numbers, so the option is not a no-op
    assert not torch.allclose(adv, trr_pp(rewards, group, torch.tensor(role), torch.tensor(LENGTHS), eps=1e-6))


@pytest.mark.parametrize("name, scope", [("grpo", "group"), ("dr_grpo", "group"), ("reinforce_pp", "batch")])
def test_group_estimators_token_weighted(name, scope):
    ids = GROUP if scope == "group" else [0] * len(GROUP)
    adv = ADVANTAGE_ESTIMATORS.get(name)(*_tensors(), lengths=torch.tensor(LENGTHS), eps=1e-6, weighting="token")
    for i, r in enumerate(REWARDS):
        members = _token_expanded(ids, i)
        if name == "dr_grpo":
            expected = r - statistics.mean(members)
        elif sum(ids[j] == ids[i] for j in range(len(ids))) == 1:
            expected = 0.0
        else:
            expected = (r - statistics.mean(members)) / (statistics.stdev(members) + 1e-6)
        assert adv[i].item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("name", ["rloo", "grpo", "dr_grpo", "reinforce_pp", "trr_pp"])
def test_sample_weighting_ignores_lengths(name):
    rewards, group = _tensors()
    role = torch.tensor([0, 1, 1, 0, 2, 1, 0, 0])
    fn = ADVANTAGE_ESTIMATORS.get(name)
    assert torch.equal(fn(rewards, group, role, torch.tensor(LENGTHS)), fn(rewards, group, role))


def test_adv_weighting_errors():
    rewards, group = _tensors()
    lengths = torch.tensor(LENGTHS)
    with pytest.raises(ValueError, match="rloo's leave-one-out baseline is per sample: algorithm.adv_weighting=token "
                                         "is not supported"):
        ADVANTAGE_ESTIMATORS.get("rloo")(rewards, group, lengths=lengths, weighting="token")
    with pytest.raises(ValueError, match="algorithm.adv_weighting must be one of sample, token, got 'tokens'"):
        ADVANTAGE_ESTIMATORS.get("grpo")(rewards, group, lengths=lengths, weighting="tokens")
    with pytest.raises(ValueError, match=r"adv_weighting=token needs `lengths`"):
        ADVANTAGE_ESTIMATORS.get("grpo")(rewards, group, weighting="token")
    with pytest.raises(ValueError, match=r"rewards and lengths must be 1-D of the same length, got \(8,\) and \(3,\)"):
        ADVANTAGE_ESTIMATORS.get("grpo")(rewards, group, lengths=lengths[:3], weighting="token")


@pytest.mark.parametrize("estimator, weighting, message", [
    ("rloo", "token", "rloo's leave-one-out baseline is per sample"),
    ("grpo", "seq", "algorithm.adv_weighting must be one of sample, token, got 'seq'"),
    ("gae", "token", "algorithm.adv_weighting=token applies to the group estimators, not to adv_estimator=gae"),
])
def test_policy_update_rejects_bad_weighting_when_built(small_model, estimator, weighting, message):
    from omegaconf import OmegaConf

    from rlpretrain.algorithms.update import PolicyUpdate
    from rlpretrain.config import LearnerConfig
    from rlpretrain.learner.torch import TorchLearner

    learner = TorchLearner(OmegaConf.structured(LearnerConfig()), copy.deepcopy(small_model[1]), total_steps=1)
    cfg = OmegaConf.structured(AlgorithmConfig(adv_estimator=estimator, adv_weighting=weighting))
    with pytest.raises(ValueError, match=message):
        PolicyUpdate(cfg, learner, pad_id=0, temperature=1.0, total_steps=1)


def test_group_advantages_passes_completion_lengths():
    from rlpretrain.algorithms.update import group_advantages
    from rlpretrain.rollout.batch import RolloutBatch

    role = [0, 1, 1, 0, 2, 1, 0, 0]
    batch = RolloutBatch(prompt_ids=[[1, 2]] * 8, completion_ids=[[5] * n for n in LENGTHS], sampling_logprobs=[],
                         finish_reasons=["stop"] * 8, rewards=list(REWARDS), group=list(GROUP), policy_version=0,
                         role=role)
    expected = trr_pp(*_tensors(), torch.tensor(role), torch.tensor(LENGTHS), weighting="token").tolist()
    assert group_advantages(batch, "trr_pp", "token") == expected


def test_unknown_estimator_lists_the_available_ones():
    with pytest.raises(KeyError, match="available: dr_grpo, grpo, reinforce_pp, rloo, trr_pp"):
        ADVANTAGE_ESTIMATORS.get("ppo")


# --- token quantities -----------------------------------------------------------------------

def test_token_logprobs_matches_log_softmax_gather():
    torch.manual_seed(0)
    logits, labels = torch.randn(3, 5, 11) * 3, torch.randint(0, 11, (3, 5))
    for temperature in (1.0, 0.7):
        expected = torch.log_softmax(logits / temperature, -1).gather(-1, labels[..., None])[..., 0]
        torch.testing.assert_close(token_logprobs(logits, labels, temperature), expected)


def test_entropy_is_minus_sum_p_log_p():
    torch.manual_seed(1)
    logits = torch.randn(2, 4, 9) * 2
    for temperature in (1.0, 1.5):
        p = torch.softmax(logits / temperature, -1)
        torch.testing.assert_close(entropy_from_logits(logits, temperature), -(p * p.log()).sum(-1))


def test_next_token_loss_matches_cross_entropy():
    torch.manual_seed(2)
    logits, labels = torch.randn(2, 6, 13), torch.randint(0, 13, (2, 6))
    expected = F.cross_entropy(logits.reshape(-1, 13), labels.reshape(-1), reduction="none").view(2, 6)
    torch.testing.assert_close(next_token_loss(logits, labels), expected)


# --- aggregation ----------------------------------------------------------------------------

def _explicit_agg(loss, mask, mode, norm_const):
    """The definitions, with Python loops over rows."""
    rows = [(loss[i][mask[i] > 0].tolist()) for i in range(len(loss))]
    rows = [r for r in rows if r]  # rows without tokens do not count
    if mode == "token_mean":
        return sum(sum(r) for r in rows) / sum(len(r) for r in rows)
    if mode == "seq_mean_token_mean":
        return sum(sum(r) / len(r) for r in rows) / len(rows)
    return sum(sum(r) / norm_const for r in rows) / len(rows)


@pytest.mark.parametrize("mode", LOSS_AGG_MODES)
def test_micro_batches_sum_to_the_full_batch_loss(mode):
    torch.manual_seed(3)
    n, length, norm = 10, 7, 7.0
    loss = torch.randn(n, length)
    mask = (torch.rand(n, length) < 0.6).float()
    mask[4] = 0  # a row without tokens
    full = aggregate(loss, mask, mode, norm)
    assert full.item() == pytest.approx(_explicit_agg(loss, mask, mode, norm), abs=1e-5)
    splits = [(0, 3), (3, 4), (4, 9), (9, 10)]
    num = sum(agg_numerator(loss[a:b], mask[a:b], mode, norm) for a, b in splits)
    den = sum(agg_denominator(mask[a:b], mode) for a, b in splits)
    assert (num / den).item() == pytest.approx(full.item(), abs=1e-5)


@pytest.mark.parametrize("mode", LOSS_AGG_MODES)
def test_empty_mask_gives_zero_not_nan(mode):
    loss = torch.full((2, 3), float("nan"))  # whatever sits at masked-out positions
    assert aggregate(loss, torch.zeros(2, 3), mode, 3.0).item() == 0.0


def test_aggregation_errors():
    with pytest.raises(ValueError, match="needs norm_const"):
        agg_numerator(torch.ones(1, 2), torch.ones(1, 2), "seq_mean_token_sum_norm")
    with pytest.raises(ValueError, match="available: token_mean, seq_mean_token_mean, seq_mean_token_sum_norm"):
        agg_denominator(torch.ones(1, 2), "sum")


# --- policy losses --------------------------------------------------------------------------

CLIP_LOW, CLIP_HIGH = 0.2, 0.28
CLIP = AlgorithmConfig(clip_low=CLIP_LOW, clip_high=CLIP_HIGH)  # what the losses read: the algorithm node


def test_ppo_clip_hand_numbers_and_gradients():
    # (ratio, advantage, expected loss, clipped term active)
    cases = [
        (1.5, 1.0, -1.28, True),    # A > 0, ratio above 1 + ε_high: capped gain
        (0.5, 1.0, -0.5, False),    # A > 0, ratio below 1 − ε_low: no clip on this side
        (0.5, -1.0, 0.8, True),     # A < 0, ratio below 1 − ε_low: capped gain
        (1.5, -1.0, 1.5, False),    # A < 0, ratio above 1 + ε_high: no clip on this side
        (1.1, 1.0, -1.1, False),    # inside the range
    ]
    old = torch.tensor([[-1.0] * len(cases) + [-1000.0]])  # last: masked out, absurd ratio
    logp = (old + torch.tensor([[math.log(c[0]) for c in cases] + [0.0]])).requires_grad_(True)
    adv = torch.tensor([[c[1] for c in cases] + [1.0]])
    mask = torch.tensor([[1] * len(cases) + [0]])
    loss, stats = POLICY_LOSSES.get("ppo_clip")(logp, old, adv, mask, CLIP)
    torch.testing.assert_close(loss[0], torch.tensor([c[2] for c in cases] + [0.0]))
    loss.sum().backward()
    # d loss / d logp = −ρA where the unclipped term is active, 0 where the clip is
    expected_grad = [0.0 if c[3] else -c[0] * c[1] for c in cases] + [0.0]
    torch.testing.assert_close(logp.grad[0], torch.tensor(expected_grad))
    ratios = [c[0] for c in cases]
    assert stats["clipfrac"].item() == pytest.approx(2 / 5)
    assert stats["ratio_mean"].item() == pytest.approx(sum(ratios) / 5, rel=1e-5)
    assert stats["approx_kl"].item() == pytest.approx(sum(r - 1 - math.log(r) for r in ratios) / 5, rel=1e-5)


def test_ppo_clip_sequence_advantages_broadcast_over_tokens():
    torch.manual_seed(4)
    logp, old, mask = torch.randn(3, 4), torch.randn(3, 4), torch.ones(3, 4)
    adv = torch.tensor([1.0, -2.0, 0.5])
    by_seq, _ = ppo_clip(logp, old, adv, mask, CLIP)
    by_token, _ = ppo_clip(logp, old, adv[:, None].expand(3, 4), mask, CLIP)
    torch.testing.assert_close(by_seq, by_token)


def test_gspo_sequence_ratio_value_and_gradient():
    torch.manual_seed(5)
    old = torch.randn(3, 5) - 2
    logp = (old + 0.1 * torch.randn(3, 5)).requires_grad_(True)
    logp.data[2] = old[2] + 0.5  # sequence 2: ratio e^0.5, far above 1 + ε_high
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1]])
    adv = torch.tensor([1.0, -1.0, 2.0])
    loss, stats = gspo(logp, old, adv, mask, CLIP)

    # Sequence level, by hand: s_i = exp(mean over the sequence's tokens of log-ratio).
    seq_losses, ratios = [], []
    for i in range(3):
        idx = mask[i].nonzero()[:, 0]
        s = torch.exp((logp[i, idx] - old[i, idx]).mean())
        ratios.append(s.item())
        seq_losses.append(-torch.minimum(s * adv[i], s.clamp(1 - CLIP_LOW, 1 + CLIP_HIGH) * adv[i]))
        # the token-level form takes the sequence's value at each of its tokens, 0 elsewhere
        expected_row = torch.zeros(5)
        expected_row[idx] = seq_losses[-1].item()
        torch.testing.assert_close(loss[i].detach(), expected_row)
    assert ratios[2] == pytest.approx(math.exp(0.5), rel=1e-5)
    assert stats["clipfrac"].item() == pytest.approx(5 / 12)  # sequence 2's 5 of the 12 tokens
    assert stats["ratio_mean"].item() == pytest.approx((3 * ratios[0] + 4 * ratios[1] + 5 * ratios[2]) / 12, rel=1e-5)

    # With seq_mean_token_mean it is GSPO's sequence-level objective, in value and gradient.
    token_grad = torch.autograd.grad(aggregate(loss, mask, "seq_mean_token_mean"), logp)[0]
    seq_grad = torch.autograd.grad(torch.stack(seq_losses).mean(), logp)[0]
    torch.testing.assert_close(token_grad, seq_grad)
    assert torch.all(token_grad[2] == 0)  # the clipped sequence


def test_policy_losses_are_registered():
    assert POLICY_LOSSES.names() == ["gspo", "ppo_clip"]
    with pytest.raises(KeyError, match="available: gspo, ppo_clip"):
        POLICY_LOSSES.get("sapo")


# --- KL -------------------------------------------------------------------------------------

def test_kl_estimators_hand_formulas():
    logp, ref = [-1.0, -2.5, -0.1], [-1.5, -0.5, -0.1]
    for estimator, formula in {
        "k1": lambda lp, rf: lp - rf,
        "k2": lambda lp, rf: 0.5 * (lp - rf) ** 2,
        "k3": lambda lp, rf: math.exp(rf - lp) - (rf - lp) - 1,
    }.items():
        got = kl_penalty(torch.tensor([logp]), torch.tensor([ref]), estimator)[0]
        assert got.tolist() == pytest.approx([formula(a, b) for a, b in zip(logp, ref)], abs=1e-6)


def test_k3_is_non_negative():
    torch.manual_seed(6)
    assert torch.all(kl_penalty(torch.randn(50, 20) * 3, torch.randn(50, 20) * 3, "k3") >= 0)


def test_unknown_kl_estimator_lists_the_valid_ones():
    assert KL_ESTIMATORS == ("k1", "k2", "k3")
    with pytest.raises(ValueError, match="available: k1, k2, k3"):
        kl_penalty(torch.zeros(1, 1), torch.zeros(1, 1), "k4")


# --- critic ---------------------------------------------------------------------------------

def test_gae_matches_per_row_recursion():
    torch.manual_seed(7)
    gamma, lam = 0.9, 0.8
    rewards, values = torch.randn(3, 8), torch.randn(3, 8)
    mask = torch.zeros(3, 8)
    mask[0, 2:6] = 1  # responses start at different offsets, right-padded
    mask[1, 5:8] = 1
    mask[2, 0:1] = 1
    adv, ret = gae(rewards, values, mask, gamma, lam)
    for i in range(3):
        span = mask[i].nonzero()[:, 0].tolist()
        expected_adv, expected_ret = [0.0] * 8, [0.0] * 8
        running, next_value = 0.0, 0.0
        for t in reversed(span):
            delta = rewards[i, t].item() + gamma * next_value - values[i, t].item()
            running = delta + gamma * lam * running
            expected_adv[t], expected_ret[t] = running, running + values[i, t].item()
            next_value = values[i, t].item()
        assert adv[i].tolist() == pytest.approx(expected_adv, abs=1e-5)
        assert ret[i].tolist() == pytest.approx(expected_ret, abs=1e-5)


def test_gae_with_gamma_lambda_one_and_zero_values_is_the_return():
    rewards = torch.tensor([[0.0, 0.0, 0.0, 2.0, 0.0]])
    mask = torch.tensor([[0, 1, 1, 1, 0]])
    adv, ret = gae(rewards, torch.zeros(1, 5), mask, 1.0, 1.0)
    assert adv.tolist() == [[0.0, 2.0, 2.0, 2.0, 0.0]]
    assert ret.tolist() == [[0.0, 2.0, 2.0, 2.0, 0.0]]


def test_value_loss_hand_numbers():
    values = torch.tensor([[1.0, 0.0, 0.6, 5.0]])
    old = torch.tensor([[0.5, 0.5, 0.5, 0.0]])
    returns = torch.tensor([[2.0, 2.0, 2.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    clipped = value_loss(values, old, returns, mask, clip_range=0.2)
    # v=1.0 clips to 0.7: max(1, 1.69); v=0.0 clips to 0.3: max(4, 2.89); v=0.6 inside: 1.96
    torch.testing.assert_close(clipped, torch.tensor([[0.845, 2.0, 0.98, 0.0]]))
    plain = value_loss(values, old, returns, mask, clip_range=None)
    torch.testing.assert_close(plain, torch.tensor([[0.5, 2.0, 0.98, 0.0]]))


TINY = dict(hidden_size=64, num_attention_heads=2, num_key_value_heads=2, intermediate_size=128,
            num_hidden_layers=2, vocab_size=100)


@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(8)
    return LlamaForCausalLM(LlamaConfig(**TINY)).eval()


def _inputs():
    ids = torch.randint(0, 100, (2, 6), generator=torch.Generator().manual_seed(9))
    attention = torch.ones(2, 6, dtype=torch.long)
    attention[1, 4:] = 0
    return ids, attention


def test_policy_value_head_trains_the_head_only(tiny_llama):
    import copy

    policy = copy.deepcopy(tiny_llama)
    critic = PolicyValueHead(policy)
    assert {n for n, _ in critic.named_parameters()} == {"value_head.linear.weight", "value_head.linear.bias"}
    ids, attention = _inputs()
    values = critic(ids, attention_mask=attention)
    assert values.shape == (2, 6)
    values.sum().backward()
    assert critic.value_head.linear.weight.grad.abs().sum() > 0
    assert policy.model.embed_tokens.weight.grad is None  # the shared policy is never moved


def test_value_model_from_config_and_from_policy(tiny_llama):
    from transformers import LlamaConfig

    ids, attention = _inputs()
    fresh = ValueModel(LlamaConfig(**TINY))
    assert fresh(ids, attention).shape == (2, 6)

    critic = ValueModel.from_policy(tiny_llama)
    values = critic(ids, attention_mask=attention)
    assert values.shape == (2, 6)
    # initialised from the policy: same trunk output, so the head reads the policy's last hidden state
    with torch.no_grad():
        hidden = tiny_llama(ids, attention_mask=attention, output_hidden_states=True).hidden_states[-1]
        torch.testing.assert_close(values, critic.value_head(hidden))
    values.sum().backward()
    assert critic.value_head.linear.weight.grad.abs().sum() > 0
    # a copy, not a view: training the critic leaves the policy alone
    assert all(p.grad is None for p in tiny_llama.parameters())
    assert critic.backbone.embed_tokens.weight.data_ptr() != tiny_llama.model.embed_tokens.weight.data_ptr()


def test_value_model_on_qwen2():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    critic = ValueModel.from_policy(Qwen2ForCausalLM(Qwen2Config(**TINY)))
    ids, attention = _inputs()
    assert critic(ids, attention).shape == (2, 6)
