"""The HF rollout engine against independent computations with the same model."""

import pytest
import torch

from rlpretrain.models.scorer import TeacherForcedScorer
from rlpretrain.rollout.base import SamplingParams
from rlpretrain.rollout.hf import HFEngine
from rlpretrain.rollout.kv_cache import preallocated_cache
from rlpretrain.rollout.sampling import inverse_cdf, sample_next


class _Cfg:
    max_batch_size = 256


def _engine(small_model):
    tokenizer, model = small_model
    return HFEngine(_Cfg(), model, tokenizer), tokenizer, model


def _prompts(tokenizer):
    texts = ["12 + 34 = 46 . 46 + 34 =", "7", "90 + 15 = 105 . 105 +"]
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def test_seeded_and_logprobs_match_teacher_forcing(small_model):
    engine, tokenizer, model = _engine(small_model)
    prompts = _prompts(tokenizer)
    params = SamplingParams(max_new_tokens=10, temperature=0.7, n=3, seed=11)
    first = engine.generate(prompts, params)
    again = engine.generate(prompts, params)
    assert [[c.token_ids for c in g] for g in first] == [[c.token_ids for c in g] for g in again]
    other = engine.generate(prompts, SamplingParams(max_new_tokens=10, temperature=0.7, n=3, seed=12))
    assert [[c.token_ids for c in g] for g in first] != [[c.token_ids for c in g] for g in other]
    # independent check: unpadded, uncached forward of prompt+completion, temperature-scaled
    for prompt, group in zip(prompts, first):
        assert len(group) == 3
        for c in group:
            ids = torch.tensor([prompt + c.token_ids])
            with torch.no_grad():
                logits = model(input_ids=ids).logits[0, len(prompt) - 1:-1] / 0.7
            expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor(c.token_ids)[:, None]).squeeze(-1)
            assert torch.allclose(torch.tensor(c.logprobs), expected, atol=1e-4)


def test_greedy_batch_equals_single(small_model):
    engine, tokenizer, _ = _engine(small_model)
    prompts = _prompts(tokenizer)
    params = SamplingParams(max_new_tokens=12, temperature=0.0, seed=0)
    batched = [g[0].token_ids for g in engine.generate(prompts, params)]
    single = [engine.generate([p], params)[0][0].token_ids for p in prompts]
    assert batched == single


def test_stop_token_kept_and_length_limit(small_model):
    engine, tokenizer, model = _engine(small_model)
    prompt = _prompts(tokenizer)[0]
    free = engine.generate([prompt], SamplingParams(max_new_tokens=12, temperature=0.0))[0][0]
    assert free.finish_reason == "length" and len(free.token_ids) == 12
    stop = free.token_ids[3]
    cut = engine.generate([prompt], SamplingParams(max_new_tokens=12, temperature=0.0, stop_token_ids=[stop]))[0][0]
    first = free.token_ids.index(stop)
    assert cut.token_ids == free.token_ids[:first + 1] and cut.finish_reason == "stop"


def test_stop_string(small_model):
    engine, tokenizer, _ = _engine(small_model)
    prompt = _prompts(tokenizer)[0]
    free = engine.generate([prompt], SamplingParams(max_new_tokens=12, temperature=0.0))[0][0]
    text = tokenizer.decode(free.token_ids[:4])
    cut = engine.generate([prompt], SamplingParams(max_new_tokens=12, temperature=0.0, stop_strings=[text[-2:]]))[0][0]
    assert cut.finish_reason == "stop"
    assert tokenizer.decode(cut.token_ids).endswith(text[-2:]) or text[-2:] in tokenizer.decode(cut.token_ids)
    assert len(cut.token_ids) <= 4


def test_inverse_cdf_draws_follow_the_probabilities():
    # unnormalised, with zero mass first, in the middle and last: those are never drawn
    probs = torch.tensor([0.0, 0.2, 0.0, 1.2, 0.6, 0.0]).repeat(40000, 1)
    draws = inverse_cdf(probs, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=6).double() / len(draws)
    assert freq[[0, 2, 5]].tolist() == [0.0, 0.0, 0.0]
    # binomial standard error at n=40000 is at most 0.0025: 4 of them
    assert torch.allclose(freq, torch.tensor([0.0, 0.1, 0.0, 0.6, 0.3, 0.0], dtype=torch.float64), atol=0.01)


def test_preallocated_cache_decodes_as_the_dynamic_one(small_model):
    tokenizer, model = small_model
    ids = torch.tensor([_prompts(tokenizer)[0]])
    steps = torch.tensor([[5, 9, 11]])
    with torch.no_grad():
        expected = model(input_ids=torch.cat([ids, steps], 1)).logits[0, -3:]
        cache = preallocated_cache(model, ids.shape[1] + 3)
        model(input_ids=ids, past_key_values=cache, use_cache=True)
        got = [model(input_ids=steps[:, k:k + 1], past_key_values=cache, use_cache=True).logits[0, -1] for k in range(3)]
        assert torch.allclose(torch.stack(got), expected, atol=1e-5)
        full = ids.shape[1] + 3
        with pytest.raises(RuntimeError, match=f"KV cache full: {full + 1} positions needed, {full} allocated"):
            model(input_ids=steps[:, :1], past_key_values=cache, use_cache=True)


def test_top_p_keeps_smallest_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    seen = set()
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        tok, _ = sample_next(logits, 1.0, 0.75, gen)
        seen.add(int(tok))
    assert seen == {0, 1}  # 0.5 + 0.3 reaches 0.75; tokens 2 and 3 are never drawn


def test_scorer_matches_plain_forward(small_model):
    tokenizer, model = small_model
    seqs = [s for s in _prompts(tokenizer) if len(s) > 2]
    scorer = TeacherForcedScorer(model, tokenizer.pad_token_id, max_tokens_per_batch=20)
    tails = scorer.tail_logprobs(seqs, 2)
    full = scorer.all_logprobs(seqs)
    for seq, tail, allp in zip(seqs, tails, full):
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([seq])).logits[0, :-1], -1)
        expected = logp.gather(-1, torch.tensor(seq[1:])[:, None]).squeeze(-1)
        assert torch.allclose(allp, expected, atol=1e-5)
        assert torch.allclose(tail, expected[-2:], atol=1e-5)


def test_suffix_logprobs_match_teacher_forcing(small_model):
    """RLP's fused S_pred: after each completion the engine feeds </think>-like close and the suffix;
    their log-probs equal an unpadded forward over prompt + completion (+ close) + suffix."""
    engine, tokenizer, model = _engine(small_model)
    prompts = _prompts(tokenizer)
    free = engine.generate(prompts, SamplingParams(max_new_tokens=8, temperature=1.0, n=4, seed=3))
    close = free[0][0].token_ids[1]  # a token the model does sample: some rows stop on it, others run out
    suffixes = [[5, 9], [7], [11, 4]]
    for seed in range(3, 13):  # the first seed whose rows end both ways
        params = SamplingParams(max_new_tokens=8, temperature=1.0, n=4, seed=seed, stop_token_ids=[close],
                                suffix_ids=suffixes, suffix_close_id=close)
        groups = engine.generate(prompts, params)
        reasons = {c.finish_reason for g in groups for c in g}
        if reasons == {"stop", "length"}:
            break
    assert reasons == {"stop", "length"}, reasons  # both ways of ending are exercised
    for prompt, suffix, group in zip(prompts, suffixes, groups):
        for c in group:
            closed = c.token_ids if c.token_ids[-1:] == [close] else c.token_ids + [close]
            ids = prompt + closed + suffix
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, :-1], -1)
            expected = logp[-len(suffix):].gather(-1, torch.tensor(suffix)[:, None]).squeeze(-1)
            assert torch.allclose(torch.tensor(c.suffix_logprobs), expected, atol=1e-5)
            # the sampled part is still a proper sample: its log-probs are the model's (temperature 1)
            sampled = logp[len(prompt) - 1:len(prompt) - 1 + len(c.token_ids)]
            assert torch.allclose(torch.tensor(c.logprobs),
                                  sampled.gather(-1, torch.tensor(c.token_ids)[:, None]).squeeze(-1), atol=1e-4)


def test_suffix_scoring_needs_an_engine_that_offers_it(small_model):
    engine, tokenizer, _ = _engine(small_model)
    prompts = _prompts(tokenizer)
    with pytest.raises(ValueError, match="suffix_ids has 1 suffixes for 3 prompts"):
        engine.generate(prompts, SamplingParams(max_new_tokens=4, suffix_ids=[[5]], suffix_close_id=3))
    with pytest.raises(ValueError, match="needs suffix_close_id"):
        engine.generate(prompts, SamplingParams(max_new_tokens=4, suffix_ids=[[5]] * 3))
    engine.scores_suffixes = False  # as an engine without the fused path (vLLM, remote workers)
    with pytest.raises(ValueError, match="HFEngine does not score suffixes"):
        engine.generate(prompts, SamplingParams(max_new_tokens=4, suffix_ids=[[5]] * 3, suffix_close_id=3))
