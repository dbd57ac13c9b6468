"""TPT and the next-token (CPT) trainer: packing, loss masks, mixtures, prompts (fast), and the
generation job's resume/work splitting and the trainer end to end (slow)."""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from rlpretrain.algorithms.objectives import NextTokenObjective
from rlpretrain.data.packing import StreamPacker, pack_blocks, pack_with_masks
from rlpretrain.methods.tpt.mixture import Mixture
from rlpretrain.launch.local import LocalPlacer
from tests.conftest import SMALL_MODEL, compose_cfg

LOCAL = LocalPlacer()  # the jobs pass the launcher's placer; these tests run in this process

# ---------------------------------------------------------------- packing


def _random_samples(rng, n, max_len=40, vocab=1000):
    out = []
    for _ in range(n):
        length = rng.randint(0, max_len)
        out.append(([rng.randrange(10, vocab) for _ in range(length)], [rng.randint(0, 1) for _ in range(length)]))
    return out


def test_wrap_packing_equals_pack_blocks():
    rng = random.Random(0)
    docs = [s[0] for s in _random_samples(rng, 200)]
    blocks = pack_with_masks([(d, [1] * len(d)) for d in docs], 64, separator=3)
    assert [b["input_ids"] for b in blocks] == pack_blocks(docs, 64, 3)
    assert all(b["attention_mask"] == [1] * 64 for b in blocks)


@pytest.mark.parametrize("strategy", ["wrap", "no_split"])
@pytest.mark.parametrize("separator", [2, None])
def test_packing_is_exact(strategy, separator):
    """Every token and its mask value lands exactly once, in order; blocks are full-length; padding is
    only at the end of a block and never trained; with no_split a sample that fits never straddles blocks."""
    rng = random.Random(1)
    seq_len = 32
    samples = _random_samples(rng, 300, max_len=45)  # some longer than seq_len
    blocks = pack_with_masks(samples, seq_len, separator, strategy, pad_id=0, keep_last=True)
    expect_ids, expect_mask, sample_of = [], [], []
    for k, (ids, mask) in enumerate(samples):
        sep = [separator] if separator is not None else []
        expect_ids += ids + sep
        expect_mask += mask + ([mask[-1] if mask else 0] if sep else [])
        sample_of += [k] * (len(ids) + len(sep))
    got_ids, got_mask, block_of = [], [], []
    for b, block in enumerate(blocks):
        assert len(block["input_ids"]) == len(block["loss_mask"]) == len(block["attention_mask"]) == seq_len
        n = sum(block["attention_mask"])
        assert block["attention_mask"] == [1] * n + [0] * (seq_len - n)  # right padding only
        assert block["loss_mask"][n:] == [0] * (seq_len - n)
        got_ids += block["input_ids"][:n]
        got_mask += block["loss_mask"][:n]
        block_of += [b] * n
    assert got_ids == expect_ids and got_mask == expect_mask
    if strategy == "wrap":
        assert all(sum(b["attention_mask"]) == seq_len for b in blocks[:-1])
    else:
        spans: dict[int, set] = {}
        for k, b in zip(sample_of, block_of):
            spans.setdefault(k, set()).add(b)
        for k, blocks_used in spans.items():
            length = len(samples[k][0]) + (separator is not None)
            assert len(blocks_used) == max(1, -(-length // seq_len)) or length > seq_len
            if length <= seq_len:
                assert len(blocks_used) == 1


def test_packing_matches_trl_wrapped():
    datasets = pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    rng = random.Random(2)
    samples = [s for s in _random_samples(rng, 50) if s[0]]
    ds = datasets.Dataset.from_dict({"input_ids": [s[0] for s in samples], "loss_mask": [s[1] for s in samples]})
    theirs = trl.pack_dataset(ds, 16, strategy="wrapped")
    ours = pack_with_masks(samples, 16, separator=None, keep_last=True)
    assert len(ours) == len(theirs)
    for mine, row in zip(ours, theirs):
        n = sum(mine["attention_mask"])
        assert mine["input_ids"][:n] == list(row["input_ids"]) and mine["loss_mask"][:n] == list(row["loss_mask"])


def test_stream_packer_resumes_exactly():
    rng = random.Random(3)
    samples = _random_samples(rng, 120)
    full = pack_with_masks(samples, 24, 2, "no_split", keep_last=True)
    a = StreamPacker(24, 2, "no_split")
    out = [blk for s in samples[:70] for blk in a.add(*s)]
    b = StreamPacker(24, 2, "no_split")
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    out += [blk for s in samples[70:] for blk in b.add(*s)] + b.flush()
    assert out == full


# ---------------------------------------------------------------- loss masks


def _tiny_lm(vocab=64):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64))


def test_loss_counts_only_masked_tokens_and_matches_cross_entropy():
    from types import SimpleNamespace

    from rlpretrain.learner.torch import TorchLearner

    rng = random.Random(4)
    model = _tiny_lm()
    samples = [([rng.randrange(4, 64) for _ in range(rng.randint(3, 20))], None) for _ in range(30)]
    samples = [(ids, [rng.randint(0, 1) for _ in ids]) for ids, _ in samples]
    blocks = pack_with_masks(samples, 16, separator=1, keep_last=True)
    batch = {k: torch.tensor([b[k] for b in blocks]) for k in ("input_ids", "attention_mask", "loss_mask")}

    with torch.no_grad():  # independent: plain cross-entropy on the selected targets
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        sel = batch["loss_mask"][:, 1:].bool()
        expected = F.cross_entropy(logits[:, :-1][sel], batch["input_ids"][:, 1:][sel]).item()
        objective = NextTokenObjective()
        got = (objective.numerator(model, batch)[0] / objective.denominator(batch)).item()
    assert got == pytest.approx(expected, rel=1e-5)
    assert objective.denominator(batch) == int(sel.sum())

    # changing the targets at unmasked positions leaves the loss unchanged
    changed = dict(batch)
    ids = batch["input_ids"].clone()
    cols = torch.nonzero(~sel)
    # only change a target token whose own position is not an input to any masked target later: the last column
    last = ids.shape[1] - 1
    rows = [r for r, c in cols.tolist() if c + 1 == last]
    for r in rows:
        ids[r, last] = (ids[r, last] + 1) % 64
    changed["input_ids"] = ids
    with torch.no_grad():
        assert (objective.numerator(model, changed)[0] / objective.denominator(changed)).item() == pytest.approx(got, rel=1e-6)

    # the learner's micro-batched loss equals the full-batch one
    cfg = SimpleNamespace(lr=0.0, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.0, lr_schedule="constant",
                          warmup_steps=0, min_lr_ratio=0.0, grad_clip=1.0, max_tokens_per_micro_batch=40, precision="fp32",
                          micro_batch_min_fill=0.0)
    stats = TorchLearner(cfg, model, total_steps=1).train_step(batch, objective)
    assert stats["micro_batches"] > 1
    assert stats["ntp_loss"] == pytest.approx(expected, rel=1e-5)


class _CharTokenizer:
    """Characters as tokens; '<think>' and '</think>' as single tokens (like a real tokenizer's specials)."""
    specials = {"<think>": 1, "</think>": 2}

    def __call__(self, text, add_special_tokens=False):
        ids, i = [], 0
        while i < len(text):
            for tag, tid in self.specials.items():
                if text.startswith(tag, i):
                    ids.append(tid)
                    i += len(tag)
                    break
            else:
                ids.append(ord(text[i]))
                i += 1
        return {"input_ids": ids}


def test_sample_builder_masks_thinking_only():
    from rlpretrain.methods.tpt.ntp import SampleBuilder

    tok = _CharTokenizer()
    doc, thought = "abc d", "xy z"
    ids, mask = SampleBuilder(tok, "{document} <think>{thinking}</think>", "thinking")(doc, thought)
    assert ids == [ord(c) for c in doc] + [ord(" "), 1] + [ord(c) for c in thought] + [2]
    assert mask == [0] * (len(doc) + 2) + [1] * (len(thought) + 1)
    ids_all, mask_all = SampleBuilder(tok, "{document} <think>{thinking}</think>", "all")(doc, thought)
    assert ids_all == ids and mask_all == [1] * len(ids)
    plain, plain_mask = SampleBuilder(tok, "{document}<think>{thinking}</think>", "all", max_doc_tokens=3)(doc, None)
    assert plain == [ord(c) for c in "abc"] and plain_mask == [1, 1, 1]
    with pytest.raises(ValueError):
        SampleBuilder(tok, "{thinking}{document}")
    # masks survive packing: the trained tokens of the packed stream are exactly the thoughts (+ their separator)
    blocks = pack_with_masks([(ids, mask)] * 5, 7, separator=0, keep_last=True)
    trained = [t for b in blocks for t, m in zip(b["input_ids"], b["loss_mask"]) if m]
    assert trained == ([ord(c) for c in thought] + [2, 0]) * 5


# ---------------------------------------------------------------- mixtures


def test_mixture_sample_weights():
    sizes, weights = [1000, 4000, 500], [1.0, 0.125, 2.0]  # per-sample: masses 1000, 500, 1000
    draws = Mixture(sizes, weights, seed=11).take(30000)
    counts = Counter(s for s, _ in draws)
    for source, p in enumerate([0.4, 0.2, 0.4]):
        assert abs(counts[source] / len(draws) - p) < 0.015
    assert draws == Mixture(sizes, weights, seed=11).take(30000)  # deterministic with a seed
    assert draws[:200] != Mixture(sizes, weights, seed=12).take(200)
    prop = Counter(s for s, _ in Mixture(sizes, weights, seed=11, mode="proportion").take(30000))
    for source, p in enumerate([1 / 3.125, 0.125 / 3.125, 2 / 3.125]):
        assert abs(prop[source] / 30000 - p) < 0.015
    # within a source, an epoch visits every document once before any repeats
    first = [d for s, d in draws if s == 2][:500]
    assert sorted(first) == list(range(500))


def test_mixture_resumes_exactly():
    a = Mixture([7, 3], [1.0, 1.0], seed=5)
    a.take(13)
    b = Mixture([7, 3], [1.0, 1.0], seed=5)
    b.load_state_dict(a.state_dict())
    assert a.take(50) == b.take(50)


# ---------------------------------------------------------------- prompts


def test_prompts_default_and_random_focus():
    from rlpretrain.methods.tpt.prompts import END_OF_CONTEXT, FOCUS_MARKER, PROMPTS, render

    tok = _CharTokenizer()
    tok.decode = lambda ids: "".join(chr(i) for i in ids)
    tok.chat_template = None
    doc = [ord(c) for c in "the quick brown fox"]
    built = PROMPTS.get("thinking")(doc, tok, random.Random(0))
    assert built.text.startswith("the quick brown fox\n\n" + END_OF_CONTEXT + "\n\n") and "Feynman" in built.text
    focus = PROMPTS.get("random_focus")(doc, tok, random.Random(0))
    pos = focus.focus_position
    assert 0 <= pos <= len(doc)
    assert focus.text.startswith(tok.decode(doc[:pos]) + FOCUS_MARKER + tok.decode(doc[pos:]) + "\n\n" + END_OF_CONTEXT)
    assert PROMPTS.get("random_focus")(doc, tok, random.Random(0)).focus_position == pos
    ids = render(built, tok, "<think>")
    assert ids[-1] == 1  # generation starts inside a thought


# ---------------------------------------------------------------- generation job (slow)


def _gen_cfg(model_cache, run_dir, *overrides):
    return compose_cfg(*SMALL_MODEL, f"model.cache_dir={model_cache}", "experiment=tpt_generate",
                       "model.name_or_path=embedded:tiny", "model.dtype=float32", "device=cpu", f"run_dir={run_dir}",
                       "data.num_docs=30", "method.shard_size=8", "method.batch_size=4", "method.max_thinking_tokens=6",
                       "method.prompt=thinking_short", "tracking.progress=false", *overrides)


class _Crash(RuntimeError):
    pass


@pytest.mark.slow
def test_generation_resumes_without_loss_or_duplicates(model_cache, tmp_path):
    from rlpretrain.methods.tpt.generate import generate_thinking, load_shards

    cfg = _gen_cfg(model_cache, tmp_path / "run")
    out = tmp_path / "run" / "thinking"
    calls = []

    def crash_in_second_shard(shard, done):
        calls.append((shard, done))
        if shard == 1 and done == 4:  # one batch of shard 1 saved, the second in flight
            raise _Crash

    with pytest.raises(_Crash):
        generate_thinking(cfg, on_batch=crash_in_second_shard, placer=LOCAL)
    assert (out / "shard_000000.parquet").exists() and not (out / "shard_000001.parquet").exists()
    assert len((out / ".shard_000001.partial.jsonl").read_text().splitlines()) == 4
    with open(out / ".shard_000001.partial.jsonl", "a") as f:
        f.write('{"doc_id": 12, "torn')  # a crash mid-write leaves a torn line: ignored

    summary = generate_thinking(cfg, placer=LOCAL)
    assert summary["this_run"]["documents"] == 30 - 8 - 4  # finished work was not redone
    assert summary["shards_done"] == summary["shards_total"] == 4
    assert not list(out.glob(".*partial*")) and not list(out.glob("*.tmp"))
    ds = load_shards(out)
    assert ds["doc_id"] == list(range(30))  # every document exactly once
    assert set(ds["finish_reason"]) <= {"stop", "eos", "length"}
    assert all(0 < n <= 6 for n in ds["thinking_tokens"])
    assert set(ds["prompt_name"]) == {"thinking_short"} and set(ds["generator"]) == {"embedded:tiny"}

    # an unbroken run writes the same thoughts: per-batch seeds do not depend on where a run stopped
    unbroken = generate_thinking(_gen_cfg(model_cache, tmp_path / "unbroken"), placer=LOCAL)
    assert unbroken["this_run"]["documents"] == 30
    assert load_shards(tmp_path / "unbroken" / "thinking")["thinking"] == ds["thinking"]

    # a restart with other settings is refused
    with pytest.raises(ValueError, match="other settings"):
        generate_thinking(_gen_cfg(model_cache, tmp_path / "run", "method.temperature=1.0"), placer=LOCAL)


@pytest.mark.slow
def test_generation_workers_split_shards(model_cache, tmp_path):
    from rlpretrain.methods.tpt.generate import generate_thinking, load_shards

    out = tmp_path / "shared"
    first = generate_thinking(_gen_cfg(model_cache, tmp_path / "w0", "method.num_workers=3", "method.worker_index=0",
                                       f"method.output_dir={out}", "method.prompt=random_focus"), placer=LOCAL)
    assert sorted(p.name for p in out.glob("shard_*")) == ["shard_000000.parquet", "shard_000003.parquet"]
    assert first["shards_done"] == 2
    for w in (1, 2):
        generate_thinking(_gen_cfg(model_cache, tmp_path / f"w{w}", "method.num_workers=3", f"method.worker_index={w}",
                                   f"method.output_dir={out}", "method.prompt=random_focus"), placer=LOCAL)
    ds = load_shards(out)
    assert ds["doc_id"] == list(range(30))
    assert all(p >= 0 for p in ds["focus_position"])
    assert all(0 <= p <= d for p, d in zip(ds["focus_position"], ds["doc_tokens"]))


# ---------------------------------------------------------------- trainer end to end (slow)


def _ntp_overrides(model_cache, run_dir, thinking_dir, *overrides):
    return compose_cfg(
        *SMALL_MODEL, f"model.cache_dir={model_cache}", "experiment=tpt_ntp_quickstart", f"run_dir={run_dir}",
        f"+method.sources=[{{label: corpus, source: tpt, path: '{thinking_dir}'}}]",
        "method.seq_len=64", "method.batch_size=4", "method.token_budget=1024", "method.init=scratch",
        "method.eval_source={label: heldout, source: synthetic_arithmetic, num_docs: 40, seed: 7}", "method.eval_docs=16",
        "checkpoint.every=2", "tracking.progress=false", "tracking.tensorboard=false", "learner.lr=1e-3", *overrides)


@pytest.mark.slow
def test_ntp_tpt_and_cpt_equal_budgets_and_exact_resume(model_cache, tmp_path):
    from rlpretrain.methods.tpt.generate import generate_thinking
    from rlpretrain.methods.tpt.ntp import train_ntp
    from rlpretrain.tracking import read_metrics

    thinking_dir = tmp_path / "gen" / "thinking"
    generate_thinking(_gen_cfg(model_cache, tmp_path / "gen", "data.num_docs=16"), placer=LOCAL)
    tpt = train_ntp(_ntp_overrides(model_cache, tmp_path / "tpt", thinking_dir), placer=LOCAL)
    cpt = train_ntp(_ntp_overrides(model_cache, tmp_path / "cpt", thinking_dir, "method.thinking=false"), placer=LOCAL)
    assert tpt["steps"] == cpt["steps"] == 4 and tpt["tokens_trained"] == cpt["tokens_trained"] == 1024
    assert tpt["doc_tokens_seen"] < cpt["doc_tokens_seen"]  # thinking takes part of TPT's budget
    metrics = read_metrics(tmp_path / "tpt")
    assert [m["step"] for m in metrics] == [0, 1, 2, 3, 4]
    assert all({"ntp_loss", "tokens", "lr", "grad_norm"} <= set(m) for m in metrics[1:])
    assert "eval_loss" in metrics[0] and "eval_loss" in metrics[-1]
    assert all(m["tokens"] == 4 * 64 for m in metrics[1:])

    # kill after step 2 (drop the later checkpoint), resume: the same metrics as the unbroken run
    shutil.rmtree(tmp_path / "tpt" / "checkpoints" / "step_000004")
    train_ntp(_ntp_overrides(model_cache, tmp_path / "tpt", thinking_dir, "resume=auto"), placer=LOCAL)
    resumed = read_metrics(tmp_path / "tpt")
    assert resumed == metrics
