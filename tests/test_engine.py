"""The HF rollout engine against independent computations with the same model."""

import torch

from rlpretrain.models.scorer import TeacherForcedScorer
from rlpretrain.rollout.base import SamplingParams
from rlpretrain.rollout.hf import HFEngine
from rlpretrain.rollout.sampling import sample_next


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
