"""TPT's offline job: one thinking trajectory per document, written shard by shard (arXiv 2509.20186 v4).

    rlpretrain experiment=tpt_generate data=hf data.path=... method.output_dir=out/ [method.num_workers=N method.worker_index=i]

Output: `<output_dir>/shard_NNNNNN.parquet`, loadable with
`datasets.load_dataset("parquet", data_files="<output_dir>/shard_*.parquet")`, one row per document:
doc_id, source, text (the original document), thinking (without the tags), doc_tokens (what the
prompt saw, after truncation), doc_truncated, prompt_tokens, thinking_tokens (generated tokens),
finish_reason (stop: closed the thought | eos | length), generator, prompt_name, focus_position.

Resume and work splitting:
- shard i holds documents [i*shard_size, (i+1)*shard_size) and belongs to worker i % num_workers;
- a finished shard is written to a temporary file and renamed, so it exists whole or not at all;
  a restarted job skips it;
- inside a shard every finished batch of documents is appended (one write, fsynced) to
  `.shard_NNNNNN.partial.jsonl`; a restart keeps those and generates only the rest, so a crash
  loses at most the batch in flight. Each batch's sampling seed comes from (seed, its first
  document id), so a resumed job writes what an unbroken one would;
- `job.json` records the settings that decide the output; a restart with different ones is refused.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rlpretrain.checks import require
from rlpretrain.methods.tpt.prompts import PROMPTS, render
from rlpretrain.seeding import derive_seed

log = logging.getLogger(__name__)

FINISH_REASONS = ("stop", "eos", "length")


@dataclass
class TPTGenerateConfig:
    """method=tpt_generate: a thinking trajectory per document.

    Defaults are the paper's (arXiv 2509.20186 v4, Setup): 2k-token documents, at most 8k thinking
    tokens, temperature 0.6, top-p 0.9, stop at </think>. The engine is `rollout.name`; its
    batch limit is `rollout.max_batch_size` (the rollout group's sampling fields are not used).
    """
    name: str = "tpt_generate"
    prompt: str = "thinking"  # thinking | random_focus (rlpretrain/methods/tpt/prompts.py)
    max_doc_tokens: int = 2048  # documents truncated on a token boundary
    max_thinking_tokens: int = 8192
    temperature: float = 0.6
    top_p: float = 0.9
    think_open: str = "<think>"  # appended to the prompt: generation starts inside a thought
    think_close: str = "</think>"  # stop token/string
    use_chat_template: bool = True  # the generator's chat template, when its tokenizer has one
    shard_size: int = 1000  # documents per output shard (the unit of resume and of work splitting)
    batch_size: int = 16  # documents per generate call (the unit of in-shard progress)
    num_workers: int = 1  # shard i belongs to worker i % num_workers
    worker_index: int = 0
    output_dir: Optional[str] = None  # default: <run_dir>/thinking
    source_name: Optional[str] = None  # label per row; default: data.path or data.source
    generator_name: Optional[str] = None  # recorded per row; default: model.name_or_path

    def __post_init__(self):
        require(self.temperature >= 0, "temperature", ">= 0 (0: greedy)", self.temperature)
        require(0 < self.top_p <= 1, "top_p", "in (0, 1]", self.top_p)


def shard_name(index: int) -> str:
    return f"shard_{index:06d}.parquet"


def _partial_path(out: Path, index: int) -> Path:
    return out / f".shard_{index:06d}.partial.jsonl"


def job_settings(cfg, gen, num_docs: int) -> dict:
    return {
        "num_docs": num_docs, "shard_size": gen.shard_size, "prompt": gen.prompt, "generator": generator_name(cfg, gen),
        "source": source_name(cfg, gen), "max_doc_tokens": gen.max_doc_tokens, "max_thinking_tokens": gen.max_thinking_tokens,
        "temperature": gen.temperature, "top_p": gen.top_p, "think_open": gen.think_open, "think_close": gen.think_close,
        "use_chat_template": gen.use_chat_template, "seed": cfg.seed,
    }


def generator_name(cfg, gen) -> str:
    return gen.generator_name or cfg.model.name_or_path


def source_name(cfg, gen) -> str:
    return gen.source_name or cfg.data.path or cfg.data.source


def _check_job(out: Path, settings: dict) -> None:
    path = out / "job.json"
    if path.exists():
        old = json.loads(path.read_text())
        diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        if diff:
            raise ValueError(f"{out} holds a generation job with other settings ({diff}: was, now); "
                             "use another method.output_dir or the same settings")
        return
    tmp = out / f".job.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(settings, indent=2))
    os.replace(tmp, path)


def _read_partial(path: Path) -> dict[int, dict]:
    """Records of finished batches; a torn last line (a crash mid-write) is ignored."""
    done: dict[int, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[record["doc_id"]] = record
    return done


def _append_records(path: Path, records: list[dict]) -> None:
    with path.open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
        f.flush()
        os.fsync(f.fileno())


def _write_shard(out: Path, index: int, records: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    final = out / shard_name(index)
    tmp = out / f".{final.name}.{os.getpid()}.tmp"
    pq.write_table(pa.Table.from_pylist(sorted(records, key=lambda r: r["doc_id"])), tmp)
    os.replace(tmp, final)  # atomic: a shard exists whole or not at all


def _stop_ids(tokenizer, close: str) -> tuple[list[int], list[str], int | None]:
    ids, strings = [], []
    close_id = tokenizer.convert_tokens_to_ids(close)
    if close_id is not None and close_id != tokenizer.unk_token_id:
        ids.append(close_id)
    else:
        close_id = None
        strings.append(close)
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return ids, strings, close_id


def _thinking_text(tokenizer, token_ids: list[int], close: str, close_id, eos_id) -> tuple[str, str]:
    reason = "length"
    if token_ids and close_id is not None and token_ids[-1] == close_id:
        token_ids, reason = token_ids[:-1], "stop"
    elif token_ids and eos_id is not None and token_ids[-1] == eos_id:
        token_ids, reason = token_ids[:-1], "eos"
    text = tokenizer.decode(token_ids, skip_special_tokens=False)
    if close in text:  # a multi-token closing tag (stop string)
        text, reason = text[: text.index(close)], "stop"
    return text.strip(), reason


def generate_thinking(cfg, gen=None, out_dir: str | Path | None = None, on_batch=None, *, placer) -> dict:
    """Run (or resume) this worker's part of the job. `on_batch(shard, n_done)` is called after each
    saved batch (tests raise from it to simulate a crash). `placer` (rlpretrain/launch/: local or
    Ray) puts the engine. Returns the summary (also in summary.json)."""
    from tqdm import tqdm

    from rlpretrain.data.documents import load_documents
    from rlpretrain.models.loading import load_model_and_tokenizer, pick_device
    from rlpretrain.rollout.base import SamplingParams

    gen = gen if gen is not None else cfg.method
    if gen.prompt not in PROMPTS:
        raise ValueError(f"method.prompt must be one of {PROMPTS.names()}, got '{gen.prompt}'")
    if gen.num_workers < 1 or not 0 <= gen.worker_index < gen.num_workers:
        raise ValueError(f"need 0 <= method.worker_index < method.num_workers, got {gen.worker_index} / {gen.num_workers}")
    if gen.shard_size < 1 or gen.batch_size < 1 or gen.max_doc_tokens < 1 or gen.max_thinking_tokens < 1:
        raise ValueError("method.shard_size, batch_size, max_doc_tokens and max_thinking_tokens must be positive")
    out = Path(out_dir or gen.output_dir or Path(cfg.run_dir) / "thinking")
    out.mkdir(parents=True, exist_ok=True)
    texts = load_documents(cfg.data, cfg.seed)
    settings = job_settings(cfg, gen, len(texts))
    _check_job(out, settings)

    num_shards = math.ceil(len(texts) / gen.shard_size)
    mine = [i for i in range(num_shards) if i % gen.num_workers == gen.worker_index]
    todo = [i for i in mine if not (out / shard_name(i)).exists()]
    log.info("%d documents in %d shards; worker %d/%d owns %d, %d to do", len(texts), num_shards,
             gen.worker_index, gen.num_workers, len(mine), len(todo))
    run_stats = {"documents": 0, "generated_tokens": 0, "seconds": 0.0}
    if todo:
        tokenizer, model = load_model_and_tokenizer(cfg.model, pick_device(cfg.device))
        engine = placer.engine(cfg, model, tokenizer, out)
        stop_ids, stop_strings, close_id = _stop_ids(tokenizer, gen.think_close)
        prompt_fn = PROMPTS.get(gen.prompt)
        pending = {i: _read_partial(_partial_path(out, i)) for i in todo}
        total = sum(min(gen.shard_size, len(texts) - i * gen.shard_size) - len(pending[i]) for i in todo)
        started = time.perf_counter()
        bar = tqdm(total=total, desc=f"tpt_generate worker {gen.worker_index}/{gen.num_workers}", unit="doc",
                   dynamic_ncols=True, disable=not cfg.tracking.progress)
        for shard in todo:
            records = pending.pop(shard)
            ids = [d for d in range(shard * gen.shard_size, min((shard + 1) * gen.shard_size, len(texts)))
                   if d not in records]
            for start in range(0, len(ids), gen.batch_size):
                batch = ids[start:start + gen.batch_size]
                new = _generate_batch(cfg, gen, engine, tokenizer, prompt_fn, texts, batch,
                                      SamplingParams(max_new_tokens=gen.max_thinking_tokens, temperature=gen.temperature,
                                                     top_p=gen.top_p, stop_token_ids=stop_ids, stop_strings=stop_strings,
                                                     seed=derive_seed(cfg.seed, batch[0], "tpt_generate")),
                                      close_id, settings)
                _append_records(_partial_path(out, shard), new)
                records.update({r["doc_id"]: r for r in new})
                run_stats["documents"] += len(new)
                run_stats["generated_tokens"] += sum(r["thinking_tokens"] for r in new)
                elapsed = time.perf_counter() - started
                bar.update(len(new))
                bar.set_postfix(tok_s=f"{run_stats['generated_tokens'] / elapsed:.0f}", shard=shard)
                if on_batch is not None:
                    on_batch(shard, len(records))
            _write_shard(out, shard, list(records.values()))
            _partial_path(out, shard).unlink(missing_ok=True)
        bar.close()
        run_stats["seconds"] = time.perf_counter() - started
    summary = summarize(out, num_shards)
    secs = run_stats["seconds"]
    summary["this_run"] = {**run_stats, "docs_per_s": run_stats["documents"] / secs if secs else None,
                           "tokens_per_s": run_stats["generated_tokens"] / secs if secs else None,
                           "worker_index": gen.worker_index, "num_workers": gen.num_workers}
    tmp = out / f".summary.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, out / "summary.json")
    return summary


def _generate_batch(cfg, gen, engine, tokenizer, prompt_fn, texts, batch, params, close_id, settings) -> list[dict]:
    prompts, meta = [], []
    for doc_id in batch:
        ids = tokenizer(texts[doc_id], add_special_tokens=False)["input_ids"]
        truncated = ids[: gen.max_doc_tokens]
        built = prompt_fn(truncated, tokenizer, random.Random(derive_seed(cfg.seed, doc_id, "tpt_focus")))
        prompt = render(built, tokenizer, gen.think_open, gen.use_chat_template)
        prompts.append(prompt)
        meta.append((doc_id, len(truncated), len(ids) > len(truncated), len(prompt), built.focus_position))
    completions = engine.generate(prompts, params)
    records = []
    for (doc_id, doc_tokens, truncated, prompt_tokens, focus), (c,) in zip(meta, completions):
        thinking, reason = _thinking_text(tokenizer, c.token_ids, gen.think_close, close_id, tokenizer.eos_token_id)
        records.append({
            "doc_id": doc_id, "source": settings["source"], "text": texts[doc_id], "thinking": thinking,
            "doc_tokens": doc_tokens, "doc_truncated": truncated, "prompt_tokens": prompt_tokens,
            "thinking_tokens": len(c.token_ids), "finish_reason": reason, "generator": settings["generator"],
            "prompt_name": gen.prompt, "focus_position": focus,
        })
    return records


def load_shards(out: str | Path):
    """The job's output as a `datasets.Dataset` (finished shards only), in doc_id order."""
    import datasets

    files = sorted(str(p) for p in Path(out).glob("shard_*.parquet"))
    if not files:
        raise FileNotFoundError(f"no finished shards (shard_*.parquet) in {out}")
    # shards are written sorted by doc_id and named by index, so the rows come in doc_id order
    return datasets.load_dataset("parquet", data_files=files, split="train")


def summarize(out: Path, num_shards: int) -> dict:
    """Thinking-length statistics per source over every finished shard in `out` (all workers')."""
    import pyarrow.parquet as pq

    files = sorted(out.glob("shard_*.parquet"))
    by_source: dict[str, dict[str, list]] = {}
    for f in files:
        table = pq.read_table(f, columns=["source", "thinking_tokens", "doc_tokens", "finish_reason"]).to_pydict()
        for src, n, d, reason in zip(table["source"], table["thinking_tokens"], table["doc_tokens"], table["finish_reason"]):
            s = by_source.setdefault(src, {"thinking": [], "doc": [], "reason": []})
            s["thinking"].append(n), s["doc"].append(d), s["reason"].append(reason)
    sources = {}
    for src, s in by_source.items():
        t = sorted(s["thinking"])
        sources[src] = {
            "documents": len(t), "thinking_tokens_total": sum(t), "thinking_tokens_mean": statistics.fmean(t),
            "thinking_tokens_median": statistics.median(t), "thinking_tokens_p90": t[min(len(t) - 1, int(0.9 * len(t)))],
            "thinking_tokens_max": t[-1], "doc_tokens_mean": statistics.fmean(s["doc"]),
            **{f"finish_{r}": s["reason"].count(r) / len(t) for r in FINISH_REASONS},
        }
    return {"output_dir": str(out), "shards_done": len(files), "shards_total": num_shards, "sources": sources}


def format_summary(summary: dict) -> str:
    lines = [f"thinking trajectories: {summary['shards_done']}/{summary['shards_total']} shards in {summary['output_dir']}"]
    for src, s in summary["sources"].items():
        lines.append(f"  {src}: {s['documents']} docs, thinking tokens mean {s['thinking_tokens_mean']:.1f} "
                     f"median {s['thinking_tokens_median']} p90 {s['thinking_tokens_p90']} max {s['thinking_tokens_max']}; "
                     f"closed {s['finish_stop']:.0%}, eos {s['finish_eos']:.0%}, length {s['finish_length']:.0%}")
    run = summary.get("this_run")
    if run and run["documents"]:
        lines.append(f"  this run: {run['documents']} docs, {run['generated_tokens']} tokens in {run['seconds']:.1f} s "
                     f"({run['docs_per_s']:.2f} docs/s, {run['tokens_per_s']:.0f} tokens/s)")
    return "\n".join(lines)

