"""RPT's pieces against hand computations: reward, extraction, token bytes, entropy, pre-pass, dynamic sampling."""

import math

import pytest
import torch

from rlpretrain.rewards import REWARDS, build_rewards, combine_rewards
from rlpretrain.rewards.prefix_match import extract_boxed, first_token_match_reward, prefix_match_reward, token_bytes
from rlpretrain.data.entropy_filter import columns, document_entropies, entropy_prepass, hard_positions, topk_entropy
from rlpretrain.prompts.rpt import TEMPLATES, build_prompt
from rlpretrain.rollout.dynamic_sampling import dynamic_sample

TRUTH = [" size", " and", " shape", "."]


@pytest.fixture(scope="module")
def tiny():
    """(tokenizer, model): the embedded recipe's byte-level tokenizer and a random 1-layer Llama (no warm-up)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from rlpretrain.data.synthetic import arithmetic_corpus
    from rlpretrain.models.embedded import train_tokenizer

    tokenizer = train_tokenizer(arithmetic_corpus(300, seed=5, think_prob=0.5), 320)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=256)).eval()
    return tokenizer, model


# ---------------------------------------------------------------- prefix-match reward

@pytest.mark.parametrize("prediction, expected", [
    (" size", 1.0),                 # exactly the next token
    (" size and", 1.0),             # two tokens, ends on a boundary
    (" size and shape.", 1.0),      # the whole continuation
    (" si", 0.0),                   # cut inside a token
    (" size an", 0.0),              # cut inside the second token
    ("size", 0.0),                  # the leading space is missing
    (" Size", 0.0),
    ("", 0.0),                      # empty
    (None, 0.0),                    # no box
    (" size and shape. More", 0.0),  # longer than the continuation
])
def test_prefix_match_hand_cases(prediction, expected):
    assert prefix_match_reward(prediction, TRUTH) == expected


def test_prefix_match_multibyte_utf8():
    # "é" is 2 bytes, "日本" 6 bytes; tokens given as strings are UTF-8 encoded
    assert prefix_match_reward(" café", [" caf", "é", " au"]) == 1.0
    assert prefix_match_reward(" caf", [" caf", "é", " au"]) == 1.0
    assert prefix_match_reward(" cafe", [" caf", "é", " au"]) == 0.0
    assert prefix_match_reward("日本", ["日", "本", "語"]) == 1.0
    assert prefix_match_reward("日本語", ["日", "本", "語"]) == 1.0
    # byte-level tokens holding half a character: boundaries are byte offsets, not characters
    e = "é".encode()  # b"\xc3\xa9"
    split = [b" caf\xc3", b"\xa9", b" au"]
    assert b"".join(split).decode() == " café au"
    assert prefix_match_reward(" café", split) == 1.0       # ends at byte 6: a boundary
    assert prefix_match_reward(" caf", split) == 0.0        # byte 4 is inside the first token
    nihon = "日本".encode()  # 6 bytes, cut as 2 + 4
    assert prefix_match_reward("日本", [nihon[:2], nihon[2:]]) == 1.0
    assert prefix_match_reward("日", [nihon[:2], nihon[2:]]) == 0.0  # 3 bytes: not a boundary
    assert len(e) == 2


def test_first_token_match():
    assert first_token_match_reward(" size", TRUTH) == 1.0
    assert first_token_match_reward(" size and more", TRUTH) == 1.0  # only the first token is judged
    assert first_token_match_reward(" si", TRUTH) == 0.0
    assert first_token_match_reward("size", TRUTH) == 0.0
    assert first_token_match_reward("", TRUTH) == 0.0


def test_registered_rewards_through_combine():
    assert {"prefix_match", "first_token_match", "next_token_prob"} <= set(REWARDS.names())
    completions = ["a</think> \\boxed{ size}", "no think \\boxed{ size}", "x</think>\\boxed{ si}",
                   "x</think>\\boxed{ size and}"]
    cols = {"target_token_bytes": [[t.encode() for t in TRUTH]] * 4,
            "prediction_first_token_prob": [0.3, 0.0, 0.1, 0.3]}
    specs = [type("S", (), {"name": n, "weight": 1.0})() for n in ("prefix_match",)]
    totals, _ = combine_rewards(build_rewards(specs), ["p"] * 4, completions, cols)
    assert totals == [1.0, 0.0, 0.0, 1.0]
    specs = [type("S", (), {"name": "next_token_prob", "weight": 2.0})()]
    totals, _ = combine_rewards(build_rewards(specs), ["p"] * 4, completions, cols)
    assert totals == pytest.approx([0.6, 0.0, 0.2, 0.6])


# ---------------------------------------------------------------- extraction

@pytest.mark.parametrize("completion, expected", [
    ("step by step</think> so \\boxed{ para}", " para"),             # leading space kept
    ("</think>\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),               # nested braces
    ("</think>\\boxed{a} then \\boxed{b}", "b"),                     # the last box
    ("\\boxed{early}</think>\\boxed{late}", "late"),                 # only after </think>
    ("\\boxed{x}</think> no box", None),                             # box only inside the thought
    ("thinking \\boxed{x} with no close", None),                     # no </think>
    ("</think>\\boxed{a}</think>\\boxed{b}", "b"),                   # after the last </think>
    ("</think>\\boxed{outer \\boxed{inner}}", "outer \\boxed{inner}"),  # a nested box is part of the outer
    ("</think>\\boxed{a} \\boxed{unclosed", None),                   # truncated last box
    ("</think>\\boxed{}", ""),                                       # empty box (reward 0)
])
def test_extract_boxed(completion, expected):
    assert extract_boxed(completion) == expected


# ---------------------------------------------------------------- exact token bytes

def test_token_bytes_byte_level_partial_characters(tiny):
    tokenizer, _ = tiny
    text = " café 日本 12 + 3 ="
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces = token_bytes(tokenizer, ids)
    assert b"".join(pieces) == text.encode("utf-8")
    # the tokenizer never saw these characters: some tokens hold only part of one
    assert any(_not_utf8(p) for p in pieces)
    # the reward on these exact bytes: "é" ends on a boundary only after its last byte
    assert prefix_match_reward(" café", pieces) == 1.0
    assert prefix_match_reward(" café 日本", pieces) == 1.0
    assert prefix_match_reward(" café 日", pieces) == 1.0  # unseen characters: one token per byte
    assert prefix_match_reward(" caf", pieces) == 1.0
    assert prefix_match_reward("café", pieces) == 0.0


def _not_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


# ---------------------------------------------------------------- prompts

def test_templates_and_prompt_end(tiny):
    tokenizer, _ = tiny
    assert tokenizer.chat_template is None
    prompt = build_prompt(tokenizer, "v0", "12 + 3 =")
    assert prompt.endswith("### Context\n12 + 3 =\n\n<think>")
    assert "\\boxed{ para}" in prompt and "\\text{}" in prompt and "step by step" in prompt
    assert set(TEMPLATES) >= {"v0", "candidates", "concise"}
    with pytest.raises(ValueError, match="unknown RPT template"):
        build_prompt(tokenizer, "v9", "x")


def test_chat_template_applied_and_ends_with_think():
    class Tok:
        chat_template = "x"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            return "<user>" + messages[0]["content"] + "<assistant>"
    prompt = build_prompt(Tok(), "concise", "ctx")
    assert prompt.startswith("<user>Predict the next token") and prompt.endswith("<assistant><think>\n")


# ---------------------------------------------------------------- entropy

def test_topk_entropy_by_hand():
    p = torch.tensor([0.5, 0.25, 0.125, 0.0625, 0.0625])
    logits = p.log()
    # k = 4: top four renormalised: [0.5, .25, .125, .0625] / .9375
    q = [0.5 / 0.9375, 0.25 / 0.9375, 0.125 / 0.9375, 0.0625 / 0.9375]
    assert float(topk_entropy(logits, 4)) == pytest.approx(-sum(x * math.log(x) for x in q), abs=1e-6)
    # k = 2: [2/3, 1/3]
    assert float(topk_entropy(logits, 2)) == pytest.approx(-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)), abs=1e-6)
    # k larger than the vocabulary: the whole distribution (1.875 bits)
    assert float(topk_entropy(logits + 3.0, 16)) == pytest.approx(1.875 * math.log(2), abs=1e-6)
    # uniform over 16 of many: log 16
    assert float(topk_entropy(torch.cat([torch.zeros(16), torch.full((100,), -50.0)]), 16)) == pytest.approx(math.log(16), abs=1e-5)


def test_document_entropies_match_plain_forward(tiny):
    tokenizer, model = tiny
    docs = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in
            ["12 + 34 = 46 . 46 + 34 = 80 .", "5 + 7 = 12 ."]]
    got = document_entropies(model, docs, k=16, pad_id=tokenizer.pad_token_id, max_tokens=10**6, window=10**6)
    windowed = document_entropies(model, docs, k=16, pad_id=tokenizer.pad_token_id, max_tokens=30, window=7)
    for doc, e, w in zip(docs, got, windowed):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([doc])).logits[0, :-1]
        top = torch.topk(logits, 16).values
        q = torch.softmax(top, -1)
        expected = -(q * q.log()).sum(-1)
        assert e.shape == (len(doc) - 1,) and torch.allclose(e, expected, atol=1e-4)
        assert w.shape == e.shape and torch.allclose(w[:7], expected[:7], atol=1e-4)  # first window: same context


def test_prepass_resumes_without_recomputation(tmp_path):
    docs = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [1, 1], [2, 2, 2]]
    calls = []

    def score(batch):
        calls.append([list(d) for d in batch])
        return [torch.arange(len(d) - 1, dtype=torch.float32) + d[0] for d in batch]

    ds = entropy_prepass(docs, tmp_path, score, shard_docs=2, progress=False)
    assert len(calls) == 3 and sum(len(c) for c in calls) == 5
    assert ds.num_rows == sum(len(d) - 1 for d in docs)
    assert set(ds.column_names) == {"doc_id", "position", "entropy"}
    rows = sorted(columns(ds))
    assert rows[:2] == [(0, 1, 1.0), (0, 2, 2.0)]
    # finished: a second pass computes nothing
    calls.clear()
    again = entropy_prepass(docs, tmp_path, score, shard_docs=2, progress=False)
    assert calls == [] and again.num_rows == ds.num_rows
    # a pass killed after shard 0 (shards 1, 2 missing, and a half-written temp file): only those are scored
    (tmp_path / "shard_00001.parquet").unlink()
    (tmp_path / "shard_00002.parquet").unlink()
    (tmp_path / ".shard_00001.parquet.tmp").write_bytes(b"garbage")
    resumed = entropy_prepass(docs, tmp_path, score, shard_docs=2, progress=False)
    assert calls == [[[6, 7, 8, 9], [1, 1]], [[2, 2, 2]]]
    assert sorted(columns(resumed)) == rows
    # threshold: positions with entropy >= 2
    assert hard_positions(resumed, 2.0, len(docs)) == [[2], [1], [1, 2, 3], [], [1, 2]]
    # another corpus in the same cache directory is refused
    with pytest.raises(ValueError, match="written for"):
        entropy_prepass(docs[:3], tmp_path, score, shard_docs=2, progress=False)


# ---------------------------------------------------------------- dynamic sampling

def test_dynamic_sampling_refills_from_new_contexts():
    # each sampled group is (context id, rewards); contexts come in order from a stream
    patterns = iter([[1, 0], [1, 1], [0, 0], [0, 1],    # round 0: 4 asked, 2 kept
                     [1, 1], [0.5, 0],                  # round 1: 2 asked, 1 kept
                     [0, 0.5], [1, 0]])                 # round 2: 1 asked, 1 kept
    drawn, calls = [], []

    def sample(n, round_):
        calls.append((n, round_))
        out = [(len(drawn) + i, next(patterns)) for i in range(n)]
        drawn.extend(out)
        return out

    result = dynamic_sample(sample, lambda g: g[1], target=4, max_rounds=5)
    assert calls == [(4, 0), (2, 1), (1, 2)]
    assert [g[0] for g in result.groups] == [0, 3, 5, 6]  # new contexts, none reused
    assert result.rounds == 3 and result.sampled == 7 and result.dropped == 3 and not result.short
    stats = result.stats()
    assert stats["dynamic_sampling/kept_groups"] == 4 and stats["dynamic_sampling/dropped_groups"] == 3


def test_dynamic_sampling_bounded_rounds(caplog):
    def sample(n, r):
        return [[1.0, 1.0]] * n if r else [[0.0, 1.0]] + [[1.0, 1.0]] * (n - 1)

    result = dynamic_sample(sample, lambda g: g, target=3, max_rounds=2)
    assert result.short and result.rounds == 2 and len(result.groups) == 1 and not result.fallback
    assert "short" in caplog.text
    # nothing informative at all: the last round is used unfiltered, flagged
    result = dynamic_sample(lambda n, r: [[0.0, 0.0]] * n, lambda g: g, target=2, max_rounds=2)
    assert result.fallback and len(result.groups) == 2 and result.stats()["dynamic_sampling/fallback"] == 1.0
