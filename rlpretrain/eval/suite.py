"""Run an evaluation suite through a rollout engine: prompts in batches, answers extracted, graded,
every sample kept (samples.jsonl), metrics per benchmark and per data source (results.json).

Resumable: batches are fixed slices of each benchmark's examples with a seed of their own, and a
batch's samples are appended once it is graded; a resumed evaluation skips the batches it finds
complete, so it writes what an unbroken one would.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from tqdm import tqdm

from rlpretrain.eval.benchmarks import BENCHMARKS, GRADERS, Benchmark, Grader
from rlpretrain.eval.config import BenchmarkRunConfig, EvalConfig
from rlpretrain.eval.metrics import summarize as sample_metrics
from rlpretrain.rollout.base import RolloutEngine, SamplingParams
from rlpretrain.seeding import derive_seed

SAMPLES = "samples.jsonl"
RESULTS = "results.json"


def encode_prompt(tokenizer, prompt, chat: bool) -> tuple[str, list[int]]:
    """(the prompt's text as the model sees it, its token ids)."""
    if isinstance(prompt, list) and all(isinstance(t, int) for t in prompt):  # token ids, sent as they are
        return tokenizer.decode(prompt), prompt
    if isinstance(prompt, str) and not chat:
        return prompt, tokenizer(prompt, add_special_tokens=False)["input_ids"]
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("a chat prompt needs a tokenizer with a chat template; this one has none (set chat: false)")
    prefilled = messages[-1]["role"] == "assistant"  # an answer's start to continue (evalplus' instruct prompt)
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=not prefilled,
                                         continue_final_message=prefilled, tokenize=False)
    return text, tokenizer(text, add_special_tokens=False)["input_ids"]


def read_samples(path: Path) -> dict[tuple[str, str, int], dict]:
    """(benchmark label, example id, sample index) -> record. A line torn by a kill mid-write is cut
    from the file, so what is appended next starts on a line of its own."""
    out = {}
    if not path.exists():
        return out
    text = path.read_text()
    whole = text[: text.rfind("\n") + 1]
    if whole != text:
        path.write_text(whole)
    for line in whole.splitlines():
        r = json.loads(line)
        out[(r["benchmark"], r["example_id"], r["sample_index"])] = r
    return out


def label_of(run: BenchmarkRunConfig) -> str:
    return run.label or run.name


def run_benchmark(run: BenchmarkRunConfig, engine: RolloutEngine, tokenizer, samples_path: Path, seen: dict,
                  batch_size: int, seed: int, progress: bool) -> tuple[list[dict], Benchmark, Grader]:
    """Generate and grade what `seen` lacks; returns every record of this benchmark, in order, with the
    benchmark and grader that made them."""
    bench: Benchmark = BENCHMARKS.get(run.name)()
    template = run.template or bench.default_template
    grader = GRADERS.get(run.grader or bench.grader_for(template))()
    bench.use_tokenizer(tokenizer)
    examples = bench.load(run.local_path, run.limit)
    if len({e.id for e in examples}) != len(examples):
        raise ValueError(f"benchmark {run.name}: example ids are not unique")
    shots = bench.default_shots if run.shots is None else run.shots
    if shots and run.fewshot_path:
        bench.load_fewshot(run.fewshot_path)
    stops = bench.stop(template)
    label = label_of(run)
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    batches = [examples[i:i + batch_size] for i in range(0, len(examples), batch_size)]
    bar = tqdm(total=len(examples), desc=f"eval {label}", unit="example", dynamic_ncols=True, disable=not progress)
    for index, batch in enumerate(batches):
        if all((label, e.id, s) in seen for e in batch for s in range(run.k)):
            bar.update(len(batch))
            continue
        texts, ids = zip(*(encode_prompt(tokenizer, bench.prompt(e, template, shots), run.chat) for e in batch))
        params = SamplingParams(max_new_tokens=run.max_new_tokens, temperature=run.temperature, top_p=run.top_p,
                                n=run.k, stop_token_ids=eos, stop_strings=stops,
                                seed=derive_seed(seed, index, f"eval/{label}"))
        generations = engine.generate(list(ids), params)
        rows, answers = [], []
        for example, text, samples in zip(batch, texts, generations):
            for s, sample in enumerate(samples):
                completion = trim_stop(tokenizer.decode(sample.token_ids, skip_special_tokens=True), stops)
                rows.append({"benchmark": label, "example_id": example.id, "sample_index": s, "prompt": text,
                             "completion": completion,
                             "finish_reason": sample.finish_reason, "source": example.meta.get("source")})
                answers.append(bench.extract_sample(completion, sample.token_ids, template))
        by_id = {e.id: e for e in batch}
        scores = grader.grade_batch(answers, [by_id[r["example_id"]] for r in rows])
        with open(samples_path, "a") as f:
            for r, answer, score in zip(rows, answers, scores):
                r.update(answer=answer, score=float(score))
                seen[(label, r["example_id"], r["sample_index"])] = r
                f.write(json.dumps(r) + "\n")
        bar.update(len(batch))
    bar.close()
    return [seen[(label, e.id, s)] for e in examples for s in range(run.k)], bench, grader


def trim_stop(text: str, stops) -> str:
    """The completion up to its first stop string (the engine stops on the token that completes one)."""
    cut = min((text.index(s) for s in stops if s in text), default=len(text))
    return text[:cut]


def summarize(records: list[dict], run: BenchmarkRunConfig) -> dict:
    """mean@k, pass@k (unbiased) and maj@k in percent, for k = `k` and each of `pass_k`, over the
    examples' samples; the same per data source when the examples come from several (an example
    whose source is a list counts in each: nested splits such as RPT's easy/medium/hard)."""
    per_example: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        per_example[r["example_id"]].append(r)
    ks = sorted({run.k, *run.pass_k})

    def metrics(example_ids) -> dict:
        groups = [sorted(per_example[i], key=lambda r: r["sample_index"]) for i in example_ids]
        values = sample_metrics([[r["score"] for r in g] for g in groups], [[r["answer"] for r in g] for g in groups], ks)
        return {"n_examples": len(groups), "k": run.k, **{key: 100 * v for key, v in values.items()}}

    result = metrics(list(per_example))
    sources, nested = defaultdict(list), False
    for example_id, g in per_example.items():
        source = g[0].get("source")  # a name, or a list of names for nested splits (RPT's easy ⊇ medium ⊇ hard)
        nested |= isinstance(source, list)
        for name in source if isinstance(source, list) else [] if source is None else [source]:
            sources[name].append(example_id)
    if len(sources) > 1 or nested:
        # nested splits in their own order (each list is a prefix of it), plain sources sorted
        result["by_source"] = {name: metrics(ids) for name, ids in (sources.items() if nested else sorted(sources.items()))}
    return result


def aggregates(suite: EvalConfig, benchmarks: dict) -> dict[str, float]:
    """Each aggregate: the plain mean of its parts (a benchmark's `metric`, or an earlier aggregate)."""
    out: dict[str, float] = {}
    for agg in suite.aggregates:
        parts = []
        for name in agg.of:
            if name in out:
                parts.append(out[name])
            elif agg.metric in benchmarks[name]:
                parts.append(benchmarks[name][agg.metric])
            else:
                raise ValueError(f"eval aggregate {agg.name}: benchmark {name} has no {agg.metric} "
                                 f"(it has {sorted(k for k in benchmarks[name] if '@' in k)})")
        out[agg.name] = sum(parts) / len(parts)
    return out


def check_suite(suite: EvalConfig) -> None:
    """Fail before any model loads: no benchmarks, an unknown name, a bad protocol, a label twice."""
    if not suite.benchmarks:
        raise ValueError(f"eval suite '{suite.suite}' has no benchmarks (choose a suite: eval=NAME, conf/eval/)")
    for run in suite.benchmarks:
        bench = BENCHMARKS.get(run.name)
        if run.template and run.template not in bench.templates:
            raise ValueError(f"benchmark '{run.name}' has no template '{run.template}'; available: {', '.join(bench.templates)}")
        if run.grader:
            GRADERS.get(run.grader)
        run.check()
    labels = [label_of(b) for b in suite.benchmarks]
    if len(set(labels)) != len(labels):
        raise ValueError(f"eval suite '{suite.suite}': two benchmark runs share a label {labels}; give each a label")
    known = set(labels)
    for agg in suite.aggregates:
        missing = [name for name in agg.of if name not in known]
        if missing or not agg.of:
            raise ValueError(f"eval aggregate {agg.name}: {missing or 'nothing'} is not a benchmark label or an "
                             f"earlier aggregate (known: {sorted(known)})")
        known.add(agg.name)
    if suite.batch_size < 1:
        raise ValueError(f"eval.batch_size must be >= 1, got {suite.batch_size}")


def evaluate_suite(suite: EvalConfig, engine: RolloutEngine, tokenizer, out_dir: Path, provenance: dict,
                   seed: int = 0, progress: bool = True) -> dict:
    """Every benchmark of the suite; writes samples.jsonl and results.json in `out_dir` and returns the results."""
    check_suite(suite)
    out_dir.mkdir(parents=True, exist_ok=True)
    seen = read_samples(out_dir / SAMPLES)
    results = {"suite": suite.suite, "benchmarks": {}, "protocol": {}, **provenance}
    for run in suite.benchmarks:
        records, bench, grader = run_benchmark(run, engine, tokenizer, out_dir / SAMPLES, seen, suite.batch_size,
                                               seed, progress)
        results["benchmarks"][label_of(run)] = summarize(records, run)
        results["protocol"][label_of(run)] = {
            "benchmark": run.name, "dataset": {"hf_id": bench.dataset.hf_id, "config": bench.dataset.config,
                                               "split": bench.dataset.split, "local_path": run.local_path},
            "template": run.template or bench.default_template,
            "shots": bench.default_shots if run.shots is None else run.shots, "chat": run.chat,
            "sampling": {"k": run.k, "temperature": run.temperature, "top_p": run.top_p,
                         "max_new_tokens": run.max_new_tokens},
            "limit": run.limit, "grader": {"name": grader.name, "version": grader.version}}
    results["aggregates"] = aggregates(suite, results["benchmarks"])
    (out_dir / RESULTS).write_text(json.dumps(results, indent=2))
    return results
