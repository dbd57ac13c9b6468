"""Shared-prefix passes (models/prefix_sharing.py) give what plain passes give: logits, scores,
and a learner step's loss, gradient norm and new weights."""

from __future__ import annotations

import copy
import math
import random

import pytest
import torch
from omegaconf import OmegaConf

from rlpretrain.algorithms.objectives import PolicyGradientObjective
from rlpretrain.algorithms.config import AlgorithmConfig
from rlpretrain.learner.config import LearnerConfig
from rlpretrain.learner.microbatch import pad_right, prefix_buckets, split_by_tokens
from rlpretrain.learner.torch import TorchLearner
from rlpretrain.models.prefix_sharing import distinct_prefixes, shared_prefix_forward, suffix_view
from rlpretrain.models.scorer import TeacherForcedScorer
from rlpretrain.rollout.batch import RolloutBatch


def _groups(vocab: int, n_prompts=4, g=3, seed=0):
    """Prompts of different lengths, each continued by g completions of different lengths."""
    rng = random.Random(seed)
    prompts, completions, group = [], [], []
    for k in range(n_prompts):
        prompt = [rng.randrange(3, vocab) for _ in range(rng.randrange(3, 20))]
        for _ in range(g):
            prompts.append(prompt)
            completions.append([rng.randrange(3, vocab) for _ in range(rng.randrange(1, 9))])
            group.append(k)
    return prompts, completions, group


@pytest.mark.parametrize("side", ["left", "right"])
def test_shared_forward_equals_plain_forward(small_model, side):
    _, model = small_model
    prompts, completions, _ = _groups(model.config.vocab_size)
    prefixes, owner = distinct_prefixes([tuple(p) for p in prompts])
    width = max(len(c) for c in completions)
    ids = torch.zeros(len(completions), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, c in enumerate(completions):
        cols = slice(width - len(c), width) if side == "left" else slice(0, len(c))
        ids[i, cols], mask[i, cols] = torch.tensor(c), 1
    with torch.no_grad():
        shared = shared_prefix_forward(model, prefixes, owner, ids, mask, pad_id=0)
        for i, (p, c) in enumerate(zip(prompts, completions)):
            plain = model(input_ids=torch.tensor([p + c])).logits[0, len(p):].float()
            got = shared[i, mask[i].bool()]
            assert torch.allclose(got, plain, atol=1e-5), (i, (got - plain).abs().max())


@pytest.mark.parametrize("horizon", [1, 2])
def test_scorer_with_prefixes_equals_plain(small_model, horizon):
    _, model = small_model
    prompts, completions, _ = _groups(model.config.vocab_size, seed=1)
    sequences = [p + c + [7, 8] for p, c in zip(prompts, completions)]
    prompt_lens = [len(p) for p in prompts]
    prompt_lens[0] = len(sequences[0])  # a prompt covering the whole sequence: its prefix is shortened
    scorer = TeacherForcedScorer(model, pad_id=0, max_tokens_per_batch=120)  # a small budget: several batches
    plain = scorer.tail_logprobs(sequences, horizon)
    shared = scorer.tail_logprobs(sequences, horizon, prompt_lens)
    assert torch.allclose(plain, shared, atol=1e-5), (plain - shared).abs().max()


def _learner(model, **overrides):
    cfg = OmegaConf.structured(LearnerConfig(lr=1e-2, eps=1.0, grad_clip=0.0, **overrides))
    return TorchLearner(cfg, model, total_steps=1)


@pytest.mark.parametrize("per_token", [False, True])
def test_train_step_with_shared_prompts_equals_plain(small_model, per_token):
    _, model = small_model
    prompts, completions, group = _groups(model.config.vocab_size, seed=2)
    rng = random.Random(3)
    batch = RolloutBatch(prompts, completions, [[0.0] * len(c) for c in completions], ["stop"] * len(prompts),
                         [0.0] * len(prompts), group, 0, advantages=[rng.gauss(0, 1) for _ in prompts])
    tensors = batch.to_tensors(pad_id=0)
    if per_token:  # a critic's per-token advantages and stale log-probs: both must be cut the same way
        tensors["advantages"] = torch.randn(tensors["input_ids"].shape, generator=torch.Generator().manual_seed(4))
        tensors["old_logprobs"] = -torch.rand(tensors["input_ids"].shape, generator=torch.Generator().manual_seed(5))
    objective = PolicyGradientObjective(OmegaConf.structured(AlgorithmConfig(entropy_coef=0.01)), temperature=0.7)
    shared_model, plain_model = copy.deepcopy(model), copy.deepcopy(model)
    # one micro-batch each: the entropy stat is averaged over micro-batches by sequence share
    shared = _learner(shared_model, micro_batch_min_fill=0.0).train_step(dict(tensors), objective)
    plain = _learner(plain_model, micro_batch_min_fill=0.0).train_step(
        {k: v for k, v in tensors.items() if k != "prompt_len"}, objective)
    assert shared["micro_batches"] == plain["micro_batches"] == 1
    for key in ("pg_loss", "entropy", "grad_norm"):
        assert math.isclose(shared[key], plain[key], rel_tol=1e-4, abs_tol=1e-7), (key, shared[key], plain[key])
    for p, q in zip(shared_model.parameters(), plain_model.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_suffix_view_cuts_each_row_from_its_last_prompt_token():
    rows = [[1, 2, 3, 9, 9], [1, 2, 3, 8], [4, 5, 6]]
    prompt_len = [3, 3, 2]
    micro = {"input_ids": pad_right(rows, 0), "attention_mask": pad_right([[1] * len(r) for r in rows], 0),
             "loss_mask": pad_right([[0] * p + [1] * (len(r) - p) for r, p in zip(rows, prompt_len)], 0),
             "prompt_len": torch.tensor(prompt_len)}
    view, prefixes, owner = suffix_view(micro)
    assert prefixes == [(1, 2), (4,)] and owner == [0, 0, 1]
    assert view["input_ids"].tolist() == [[3, 9, 9], [3, 8, 0], [5, 6, 0]]
    assert view["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0], [1, 1, 0]]
    assert view["loss_mask"].tolist() == [[0, 1, 1], [0, 1, 0], [0, 1, 0]]
    micro["input_ids"][1, 1] = 7  # no prompt repeats: a plain pass
    assert suffix_view(micro) is None


def test_prefix_buckets_keep_groups_and_budget():
    rng = random.Random(6)
    owner = [k for k in range(10) for _ in range(4)]
    prefix_lens = [5 + 7 * o for o in owner]
    suffix_lens = [rng.randrange(1, 12) for _ in owner]
    buckets = prefix_buckets(prefix_lens, suffix_lens, owner, max_tokens=200, min_fill=0.5)
    assert sorted(i for b in buckets for i in b) == list(range(len(owner)))
    for b in buckets:
        assert len({owner[i] for i in b}) * 4 == len(b)  # whole groups only
        units = {owner[i] for i in b}
        cost = len(units) * max(prefix_lens[i] for i in b) + len(b) * max(suffix_lens[i] for i in b)
        real = sum(prefix_lens[i] for i in b) / 4 + sum(suffix_lens[i] for i in b)
        assert cost <= 200 or len(units) == 1
        assert real >= 0.5 * cost or len(units) == 1


def test_split_by_tokens_keeps_a_prompt_in_one_micro_batch():
    prompts, completions, group = _groups(50, n_prompts=5, g=4, seed=7)
    batch = RolloutBatch(prompts, completions, [[0.0] * len(c) for c in completions], ["stop"] * len(prompts),
                         [0.0] * len(prompts), group, 0).to_tensors(pad_id=0)
    micro = split_by_tokens(batch, max_tokens=60)
    assert len(micro) > 1
    seen = [tuple(m["input_ids"][i, :int(m["prompt_len"][i])].tolist()) for m in micro for i in range(len(m["input_ids"]))]
    per_micro = [{tuple(m["input_ids"][i, :int(m["prompt_len"][i])].tolist()) for i in range(len(m["input_ids"]))}
                 for m in micro]
    assert len(seen) == len(prompts)
    assert sum(len(s) for s in per_micro) == len(set(seen))  # no prompt in two micro-batches
