"""`rlpretrain-eval CHECKPOINT [--data ...] [--out ...]`: next-token accuracy of any checkpoint.

CHECKPOINT is a Hugging Face model directory, e.g. RUN_DIR/checkpoints/step_000060/policy.
When CHECKPOINT lies in a run directory (RUN_DIR/run.yaml), every default is that run's own: an RPT
run's evaluation settings (method.eval, its template and sampling), the positions its own evaluation
chose (RUN_DIR/eval/positions.json), so both give one table; its held-out documents
(RPT: method.eval.holdout_docs; next-token runs: method.eval_source); the run's seed and sampling.
Without held-out documents of the run, `--data synthetic` (a fresh arithmetic corpus), or a
json/jsonl/parquet/txt file. Entropy splits use a proxy: by default the run's initial model
(RUN_DIR/checkpoints/step_000000/policy) when it exists, else the checkpoint itself; `--proxy` chooses
another. Writes next_token_accuracy.{md,json,csv}.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from types import SimpleNamespace

from rlpretrain.eval.next_token_accuracy import is_rpt_run


def _run_dir(checkpoint: Path) -> Path | None:
    # RUN_DIR/checkpoints/step_N/policy
    if checkpoint.name == "policy" and checkpoint.parent.parent.name == "checkpoints":
        return checkpoint.parent.parent.parent
    return None


def _run_texts(run_cfg) -> tuple[list[str] | None, str]:
    """The run's own held-out documents, and where they come from; None when the run has none."""
    from rlpretrain.data.documents import load_documents, split_holdout

    m = run_cfg.method
    if is_rpt_run(run_cfg) and m.eval.holdout_docs > 0:
        return split_holdout(load_documents(run_cfg.data, run_cfg.seed), m.eval.holdout_docs)[1], \
            f"the run's held-out documents (method.eval.holdout_docs={m.eval.holdout_docs})"
    src = m.get("eval_source")
    # A next-token run's held-out source (method.eval_source), through the plain document loader: all of
    # it, with neither the trainer's method.eval_docs cap nor its eval_dedup, and a tpt source read as hf
    # (the trainer's eval_docs() does both; this scores the source the run names, not its exact eval set).
    if src:
        data = SimpleNamespace(source=src.source if src.source != "tpt" else "hf", path=src.get("path"),
                               name=src.get("data_name"), data_files=src.get("data_files"), split=src.get("split", "train"),
                               text_column=src.get("text_column", "text"), num_docs=src.get("num_docs", 2000),
                               max_docs=src.get("max_docs"))
        return load_documents(data, run_cfg.seed + src.get("seed", 0)), f"the run's method.eval_source ({src.label})"
    return None, ""


def _load_texts(args, run_cfg) -> list[str]:
    from rlpretrain.data.synthetic import arithmetic_corpus

    if args.data is None and run_cfg is not None:
        texts, origin = _run_texts(run_cfg)
        if texts is not None:
            print(f"documents: {origin}", file=sys.stderr)
            return texts[-args.holdout:] if args.holdout else texts
    if args.data in (None, "synthetic"):
        return arithmetic_corpus(args.num_docs, seed=20_000 + (args.seed or 0), think_prob=0.0)
    path = Path(args.data)
    if path.suffix == ".txt":
        texts = [t for t in path.read_text().split("\n\n") if t.strip()]
    else:
        import datasets
        builder = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}.get(path.suffix)
        if builder is None:
            raise ValueError(f"--data {path}: use a .json/.jsonl/.parquet/.txt file or 'synthetic'")
        texts = datasets.load_dataset(builder, data_files=str(path), split="train")[args.text_column]
    texts = [t for t in texts if isinstance(t, str)]
    return texts[-args.holdout:] if args.holdout else texts


# command-line flags named as EvalOptions fields; a flag left out takes the run's value (or EvalOptions' default)
OPTION_FLAGS = ("thresholds", "modes", "template", "min_context", "max_context", "target_tokens", "max_new_tokens",
                "temperature", "samples", "seed")


def eval_options(args, run_cfg):
    """The run's own evaluation settings (an RPT run's method.eval; any run's seed, sampling and thought tags),
    then the flags given on the command line."""
    from rlpretrain.eval.next_token_accuracy import EvalOptions, options_from_cfg

    if is_rpt_run(run_cfg):
        opts = options_from_cfg(run_cfg)
    elif run_cfg is not None:
        m, r = run_cfg.method, run_cfg.rollout
        opts = EvalOptions(max_new_tokens=r.max_new_tokens, temperature=r.temperature, top_p=r.top_p, seed=run_cfg.seed,
                           think_open=m.get("thought_open", "<think>"), think_close=m.get("thought_close", "</think>"))
    else:
        opts = EvalOptions(max_new_tokens=256, temperature=0.8)
    given = {flag: getattr(args, flag) for flag in OPTION_FLAGS if getattr(args, flag) is not None}
    for key in ("thresholds", "modes"):
        if key in given:
            given[key] = tuple(given[key])
    return dataclasses.replace(opts, **given)


def _run_positions(args, run_dir: Path | None, run_cfg):
    """The positions the run's own evaluation chose, when this evaluation would choose among the same."""
    from rlpretrain.eval.next_token_accuracy import read_positions

    path = run_dir / "eval" / "positions.json" if run_dir is not None else None
    own_choice = (args.data, args.min_context, args.num_positions, args.thresholds, args.seed, args.proxy,
                  args.top_k, args.holdout)
    if not is_rpt_run(run_cfg) or not path.exists() or any(x is not None and x != 0 for x in own_choice):
        return None
    return read_positions(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="rlpretrain-eval", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="a Hugging Face model directory (e.g. .../step_000060/policy)")
    p.add_argument("--data", default=None, help="synthetic | a .json/.jsonl/.parquet/.txt file (default: the run's held-out docs)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--num-docs", type=int, default=64, help="--data synthetic: documents")
    p.add_argument("--holdout", type=int, default=0, help="use only the last N documents")
    p.add_argument("--proxy", default=None, help="model for the entropy splits")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: next to the checkpoint)")
    p.add_argument("--num-positions", type=int, default=None, help="default: the run's own, else 200")
    p.add_argument("--thresholds", type=float, nargs="+", default=None, help="default: the run's own, else 0.5 1.0 1.5")
    p.add_argument("--modes", nargs="+", default=None, help="default: the run's own, else standard reasoning")
    p.add_argument("--template", default=None, help="default: the run's own, else v0")
    p.add_argument("--min-context", type=int, default=None, help="default: the run's own, else 8")
    p.add_argument("--max-context", type=int, default=None, help="default: the run's own, else 4096")
    p.add_argument("--target-tokens", type=int, default=None, help="default: the run's own, else 32")
    p.add_argument("--top-k", type=int, default=None, help="default: the run's own, else 16")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: the run's own, else 256")
    p.add_argument("--temperature", type=float, default=None, help="default: the run's own, else 0.8")
    p.add_argument("--samples", type=int, default=None, help="default: the run's own, else 1")
    p.add_argument("--seed", type=int, default=None, help="default: the run's own, else 0")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlpretrain.data.entropy_filter import document_entropies
    from rlpretrain.eval.next_token_accuracy import evaluate_model, select_positions, to_markdown, write_result
    from rlpretrain.models.loading import pick_device
    from rlpretrain.run import load_run_config

    ckpt = args.checkpoint
    if not (ckpt / "config.json").exists():
        print(f"error: {ckpt} is not a Hugging Face model directory (no config.json)", file=sys.stderr)
        return 1
    run_dir = _run_dir(ckpt)
    run_cfg = load_run_config(run_dir) if run_dir is not None else None
    opts = eval_options(args, run_cfg)
    device = pick_device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(ckpt)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=dtype).to(device).eval()
    texts = _load_texts(args, run_cfg)
    docs = [d for d in tokenizer(texts, add_special_tokens=False)["input_ids"] if len(d) > opts.min_context]
    proxy_path = args.proxy
    if proxy_path is None and run_dir is not None and (run_dir / "checkpoints" / "step_000000" / "policy").exists():
        proxy_path = str(run_dir / "checkpoints" / "step_000000" / "policy")
    items = _run_positions(args, run_dir, run_cfg)
    if items is not None:
        print(f"positions: the run's own evaluation's ({run_dir}/eval/positions.json)", file=sys.stderr)
    else:
        proxy = model if proxy_path is None else AutoModelForCausalLM.from_pretrained(proxy_path, dtype=dtype).to(device).eval()
        print(f"proxy for the entropy splits: {proxy_path or ckpt}", file=sys.stderr)
        top_k = args.top_k or (run_cfg.method.entropy_top_k if is_rpt_run(run_cfg) else 16)
        num = args.num_positions or (run_cfg.method.eval.num_positions if is_rpt_run(run_cfg) else 200)
        entropies = document_entropies(proxy, docs, k=top_k, pad_id=tokenizer.pad_token_id)
        items = select_positions(docs, entropies, min(opts.thresholds), num, opts.min_context, opts.seed)
    result = evaluate_model(model, tokenizer, docs, items, opts)
    result.update({"checkpoint": str(ckpt), "proxy": proxy_path or str(ckpt), "num_docs": len(docs)})
    out = args.out or (ckpt.parent / "eval" if ckpt.name == "policy" else ckpt / "eval")
    path = write_result(result, out, "next_token_accuracy", f"next-token accuracy (%) of {ckpt}")
    print(to_markdown(result, f"next-token accuracy (%) of {ckpt}"))
    print(f"\nwritten: {path} (+ .json, .csv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
