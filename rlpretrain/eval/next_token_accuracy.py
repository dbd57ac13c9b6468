"""Next-token accuracy on held-out positions, split by a proxy's entropy (RPT arXiv 2506.08007 Table 1).

Positions are drawn among the held-out documents' positions whose proxy top-k entropy exceeds the
lowest threshold; split k counts the positions with entropy > threshold_k, so the splits are
nested (easy > 0.5 ⊇ medium > 1.0 ⊇ hard > 1.5), as in the paper. Two modes:

- standard: no reasoning; correct when the argmax next token given x_<t is x_t.
- reasoning: the RPT prompt, a sampled ``<think> … </think> \\boxed{y}`` response, the prefix-match
  reward of y (rewards/prefix_match.py); accuracy is the mean over `samples` responses
  (Random@1 when samples = 1) and pass@k is reported as well when samples > 1.

The same positions (chosen with the initial model as proxy) are used before and after training.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from rlpretrain.rewards.prefix_match import extract_boxed, prefix_match_reward, token_bytes

log = logging.getLogger(__name__)
SPLIT_NAMES = ("easy", "medium", "hard")


@dataclass
class EvalItem:
    doc: int
    position: int
    entropy: float


@dataclass
class EvalOptions:
    thresholds: tuple = (0.5, 1.0, 1.5)
    modes: tuple = ("standard", "reasoning")
    template: str = "v0"
    min_context: int = 8
    max_context: int = 4096
    target_tokens: int = 32
    max_new_tokens: int = 64
    temperature: float = 0.8
    top_p: float = 1.0
    samples: int = 1
    seed: int = 0
    think_open: str = "<think>"
    think_close: str = "</think>"
    max_tokens_per_batch: int = 16384
    max_batch_size: int = 256


def split_names(thresholds) -> list[str]:
    return [SPLIT_NAMES[i] if len(thresholds) == 3 else f"split{i}" for i in range(len(thresholds))]


def is_rpt_run(run_cfg) -> bool:
    """Is this run configuration (a run.yaml) an RPT run's?"""
    return run_cfg is not None and run_cfg.method.get("name") == "rpt"


def splits_of(entropy: float, thresholds) -> list[str]:
    """The (nested) splits a position belongs to: every split whose threshold its entropy exceeds."""
    return [name for name, th in zip(split_names(thresholds), thresholds) if entropy > th]


def read_positions(path: Path) -> list[EvalItem]:
    """A positions file as the rpt job's evaluation writes it (RUN_DIR/eval/positions.json):
    [{"doc": held-out document index, "position": token index, "entropy": the proxy's}, ...]."""
    rows = json.loads(Path(path).read_text())
    fields = {"doc", "position", "entropy"}
    if not isinstance(rows, list) or any(not isinstance(r, dict) or set(r) != fields for r in rows):
        raise ValueError(f"{path}: a positions file is a JSON list of {{doc, position, entropy}} objects "
                         "(as RUN_DIR/eval/positions.json)")
    return [EvalItem(**r) for r in rows]


def select_positions(docs: list[list[int]], entropies, min_entropy: float, num: int, min_context: int,
                     seed: int) -> list[EvalItem]:
    """Up to `num` positions (seeded draw) with entropy > min_entropy and at least min_context tokens before."""
    candidates = [EvalItem(d, t, float(e[t - 1])) for d, e in enumerate(entropies)
                  for t in range(max(1, min_context), len(docs[d])) if float(e[t - 1]) > min_entropy]
    rng = random.Random(seed)
    picked = rng.sample(candidates, min(num, len(candidates)))
    return sorted(picked, key=lambda it: (it.doc, it.position))


@torch.no_grad()
def standard_correct(model, docs, items, opts: EvalOptions, pad_id: int) -> list[float]:
    """Per item: 1.0 when the argmax next token (no reasoning) is the ground-truth token."""
    from rlpretrain.models.scorer import TeacherForcedScorer

    contexts = [context_ids(docs, it, opts) for it in items]
    if not items:
        return []
    logits = TeacherForcedScorer(model, pad_id, opts.max_tokens_per_batch).next_token_logits(contexts)
    return [next_token_correct(int(row.argmax()), docs[it.doc][it.position]) for row, it in zip(logits, items)]


# ---------------------------------------------------------------- one position: shared with the suite's
# `next_token` benchmark (rlpretrain/eval/benchmarks/next_token.py), so both score a position alike

def context_ids(docs, item: EvalItem, opts: EvalOptions) -> list[int]:
    """The tokens before the position, at most max_context of them."""
    return docs[item.doc][max(0, item.position - opts.max_context):item.position]


def next_token_correct(predicted: int, gold: int) -> float:
    """Standard mode's score: 1.0 when the predicted token id is the ground-truth one."""
    return float(predicted == gold)


def reasoning_prompt(tokenizer, docs, item: EvalItem, opts: EvalOptions) -> str:
    """The RPT prompt (rlpretrain/prompts/rpt.py, opts.template) on the decoded context."""
    from rlpretrain.prompts.rpt import build_prompt

    return build_prompt(tokenizer, opts.template, tokenizer.decode(context_ids(docs, item, opts)), opts.think_open)


def target_bytes(tokenizer, docs, item: EvalItem, opts: EvalOptions) -> list[bytes]:
    """The continuation's exact token bytes (target_tokens of them): what the prefix-match reward compares with."""
    return token_bytes(tokenizer, docs[item.doc][item.position:item.position + opts.target_tokens])


def reasoning_prediction(tokenizer, completion_ids, opts: EvalOptions) -> tuple[str, str | None]:
    """(the response text, special tokens kept; its boxed prediction after think_close, None on a format error)."""
    text = tokenizer.decode(completion_ids, skip_special_tokens=False)
    return text, extract_boxed(text, opts.think_close)


def reasoning_correct(model, tokenizer, docs, items, opts: EvalOptions) -> dict:
    """Per item: mean prefix-match reward over the samples, pass@k, and the format-error count."""
    from rlpretrain.rollout.base import SamplingParams
    from rlpretrain.rollout.config import RolloutConfig
    from rlpretrain.rollout.hf import HFEngine

    engine = HFEngine(RolloutConfig(max_batch_size=opts.max_batch_size), model, tokenizer)
    prompts = [tokenizer(reasoning_prompt(tokenizer, docs, it, opts), add_special_tokens=False)["input_ids"]
               for it in items]
    params = SamplingParams(max_new_tokens=opts.max_new_tokens, temperature=opts.temperature, top_p=opts.top_p,
                            n=opts.samples, stop_token_ids=[tokenizer.eos_token_id], seed=opts.seed)
    generations = engine.generate(prompts, params) if items else []
    mean, passk, errors, examples = [], [], 0, []
    for it, samples in zip(items, generations):
        target = target_bytes(tokenizer, docs, it, opts)
        scores = []
        for s in samples:
            text, pred = reasoning_prediction(tokenizer, s.token_ids, opts)
            errors += pred is None
            scores.append(prefix_match_reward(pred, target))
            if len(examples) < 3:
                examples.append({"response": text, "prediction": pred, "target": b"".join(target).decode("utf-8", "replace")})
        mean.append(sum(scores) / len(scores))
        passk.append(float(max(scores)))
    return {"mean": mean, "pass": passk, "format_errors": errors, "examples": examples}


def accuracy_rows(items, per_mode: dict[str, list[float]], thresholds) -> list[dict]:
    rows = []
    for mode, values in per_mode.items():
        for name, th in zip(split_names(thresholds), thresholds):
            chosen = [v for it, v in zip(items, values) if it.entropy > th]
            rows.append({"mode": mode, "split": name, "threshold": th, "n": len(chosen),
                         "accuracy": 100.0 * sum(chosen) / len(chosen) if chosen else float("nan")})
    return rows


def evaluate_model(model, tokenizer, docs, items, opts: EvalOptions) -> dict:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    per_mode, extra = {}, {}
    for mode in opts.modes:
        if mode == "standard":
            per_mode["standard"] = standard_correct(model, docs, items, opts, pad)
        elif mode == "reasoning":
            r = reasoning_correct(model, tokenizer, docs, items, opts)
            per_mode["reasoning"] = r["mean"]
            if opts.samples > 1:
                per_mode[f"reasoning pass@{opts.samples}"] = r["pass"]
            extra = {"format_error_frac": r["format_errors"] / max(1, len(items) * opts.samples),
                     "examples": r["examples"]}
        else:
            raise ValueError(f"unknown evaluation mode '{mode}' (standard | reasoning)")
    return {"rows": accuracy_rows(items, per_mode, opts.thresholds), "num_positions": len(items),
            "thresholds": list(opts.thresholds), **extra}


def wilson_interval(accuracy: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval (in %) of a proportion observed over n items; a mean reward in [0, 1]
    (partial prefix matches, several samples) is treated as the proportion it averages to."""
    p = accuracy / 100.0
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)


def to_markdown(result: dict, title: str = "") -> str:
    thresholds = result["thresholds"]
    names = split_names(thresholds)
    head = "| mode | " + " | ".join(f"{n} (H > {t:g})" for n, t in zip(names, thresholds)) + " |"
    lines = ([f"**{title}**", ""] if title else []) + [head, "|---" * (len(thresholds) + 1) + "|"]
    modes = list(dict.fromkeys(r["mode"] for r in result["rows"]))
    for mode in modes:
        cells = []
        for name in names:
            r = next(r for r in result["rows"] if r["mode"] == mode and r["split"] == name)
            if r["n"]:
                low, high = wilson_interval(r["accuracy"], r["n"])
                cells.append(f"{r['accuracy']:.2f} [{low:.1f}, {high:.1f}] (n={r['n']})")
            else:
                cells.append("– (n=0)")
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    lines += ["", "cells: accuracy [95% Wilson interval] (n = positions)"]
    if "format_error_frac" in result:
        lines += ["", f"reasoning format errors (no `</think>` or no box): {100 * result['format_error_frac']:.1f}%"]
    return "\n".join(lines)


def write_result(result: dict, out_dir: Path, name: str, title: str = "") -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.md").write_text(to_markdown(result, title) + "\n")
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    with (out_dir / f"{name}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["mode", "split", "threshold", "n", "accuracy"])
        writer.writeheader()
        writer.writerows(result["rows"])
    return out_dir / f"{name}.md"


# ---------------------------------------------------------------- around a training run (the rpt runner)

def options_from_cfg(cfg) -> EvalOptions:
    m, ev = cfg.method, cfg.method.eval
    return EvalOptions(
        thresholds=tuple(ev.thresholds), modes=tuple(ev.modes), template=m.template, min_context=m.min_context,
        max_context=m.max_context, target_tokens=m.target_tokens,
        max_new_tokens=ev.max_new_tokens or cfg.rollout.max_new_tokens,
        temperature=ev.temperature if ev.temperature is not None else cfg.rollout.temperature,
        top_p=cfg.rollout.top_p, samples=ev.samples, seed=cfg.seed, think_open=m.think_open,
        think_close=m.think_close, max_tokens_per_batch=cfg.learner.max_tokens_per_micro_batch,
        max_batch_size=cfg.rollout.max_batch_size)


def heldout_docs(cfg, tokenizer) -> list[list[int]]:
    from rlpretrain.data.documents import DataError, load_documents, split_holdout

    _, held = split_holdout(load_documents(cfg.data, cfg.seed), cfg.method.eval.holdout_docs)
    if not held:
        raise DataError("RPT evaluation needs held-out documents: set method.eval.holdout_docs > 0")
    ids = tokenizer(held, add_special_tokens=False)["input_ids"]
    return [d for d in ids if len(d) > cfg.method.min_context]


def evaluate_run_start(cfg) -> dict:
    """Choose the held-out positions with the initial model as proxy; evaluate it if eval.before."""
    from rlpretrain.data.entropy_filter import columns, position_entropies
    from rlpretrain.models.build_cache import cache_root
    from rlpretrain.models.proxy import load_proxy, proxy_identity
    from rlpretrain.models.loading import load_model_and_tokenizer, pick_device

    out_dir = Path(cfg.run_dir) / "eval"
    tokenizer, model = load_model_and_tokenizer(cfg.model, pick_device(cfg.device))
    model.eval()
    docs = heldout_docs(cfg, tokenizer)
    opts = options_from_cfg(cfg)
    proxy = load_proxy(cfg.method.proxy_model, tokenizer, model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ds = position_entropies(docs, proxy, pad, cfg.method, cache_root(cfg.model) / "rpt-entropy", proxy_identity(cfg),
                            cfg.learner.max_tokens_per_micro_batch, progress=cfg.tracking.progress)
    ent = [torch.zeros(max(len(d) - 1, 0)) for d in docs]
    for d, p, e in columns(ds):
        ent[d][p - 1] = e
    items = select_positions(docs, ent, min(opts.thresholds), cfg.method.eval.num_positions, opts.min_context, cfg.seed)
    state = {"docs": docs, "items": items, "opts": opts, "before": None}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "positions.json").write_text(json.dumps([asdict(it) for it in items]))
    if cfg.method.eval.before:
        if (out_dir / "before.json").exists():  # a resumed run: the initial model was evaluated already
            state["before"] = json.loads((out_dir / "before.json").read_text())
        else:
            state["before"] = evaluate_model(model, tokenizer, docs, items, opts)
            write_result(state["before"], out_dir, "before", "before training")
        print("\nRPT next-token accuracy (%), before training:\n" + to_markdown(state["before"]), flush=True)
    del model, proxy
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return state


def evaluate_run_end(cfg, state: dict) -> dict | None:
    from rlpretrain.checkpoint import list_checkpoints
    from rlpretrain.models.loading import load_policy, pick_device

    if not cfg.method.eval.after:
        return None
    last = list_checkpoints(Path(cfg.run_dir) / "checkpoints")[-1]
    tokenizer, model = load_policy(last / "policy", cfg.model.dtype, pick_device(cfg.device))
    after = evaluate_model(model, tokenizer, state["docs"], state["items"], state["opts"])
    write_result(after, Path(cfg.run_dir) / "eval", "after", f"after training ({last.name})")
    if state["before"] is not None:
        print("\nRPT next-token accuracy (%), before training:\n" + to_markdown(state["before"]), flush=True)
    print(f"\nRPT next-token accuracy (%), after training ({last.name}):\n" + to_markdown(after), flush=True)
    return after
