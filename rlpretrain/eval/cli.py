"""`rlpretrain-eval CHECKPOINT [--data ...] [--out ...]`: next-token accuracy of any checkpoint.

CHECKPOINT is a Hugging Face model directory, e.g. RUN_DIR/checkpoints/step_000060/policy.
Data: by default, when CHECKPOINT lies in a run directory with a Hydra config
(RUN_DIR/.hydra/config.yaml), that run's held-out documents (method.eval.holdout_docs);
otherwise `--data synthetic` (a fresh arithmetic corpus), or a json/jsonl/parquet/txt file.
Entropy splits use a proxy: by default the run's initial model (RUN_DIR/checkpoints/step_000000/policy)
when it exists, else the checkpoint itself; `--proxy` chooses another. Writes next_token_accuracy.{md,json,csv}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _run_dir(checkpoint: Path) -> Path | None:
    # RUN_DIR/checkpoints/step_N/policy
    if checkpoint.name == "policy" and checkpoint.parent.parent.name == "checkpoints":
        return checkpoint.parent.parent.parent
    return None


def _load_texts(args, run_cfg) -> list[str]:
    from rlpretrain.data.synthetic import arithmetic_corpus

    if args.data is None and run_cfg is not None:
        from rlpretrain.data.documents import load_documents
        from rlpretrain.data.documents import split_holdout
        holdout = args.holdout or run_cfg.method.eval.holdout_docs
        return split_holdout(load_documents(run_cfg.data, run_cfg.seed), holdout)[1]
    if args.data in (None, "synthetic"):
        return arithmetic_corpus(args.num_docs, seed=20_000 + args.seed, think_prob=0.0)
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="rlpretrain-eval", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="a Hugging Face model directory (e.g. .../step_000060/policy)")
    p.add_argument("--data", default=None, help="synthetic | a .json/.jsonl/.parquet/.txt file (default: the run's held-out docs)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--num-docs", type=int, default=64, help="--data synthetic: documents")
    p.add_argument("--holdout", type=int, default=0, help="use only the last N documents")
    p.add_argument("--proxy", default=None, help="model for the entropy splits")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: next to the checkpoint)")
    p.add_argument("--num-positions", type=int, default=200)
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 1.0, 1.5])
    p.add_argument("--modes", nargs="+", default=["standard", "reasoning"])
    p.add_argument("--template", default=None)
    p.add_argument("--min-context", type=int, default=None)
    p.add_argument("--max-context", type=int, default=None)
    p.add_argument("--target-tokens", type=int, default=32)
    p.add_argument("--top-k", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--samples", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)

    import torch
    from omegaconf import OmegaConf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlpretrain.data.entropy_filter import document_entropies
    from rlpretrain.eval.next_token_accuracy import EvalOptions, evaluate_model, select_positions, to_markdown, write_result
    from rlpretrain.models.loading import pick_device

    ckpt = args.checkpoint
    if not (ckpt / "config.json").exists():
        print(f"error: {ckpt} is not a Hugging Face model directory (no config.json)", file=sys.stderr)
        return 1
    run_dir = _run_dir(ckpt)
    run_cfg = None
    if run_dir is not None and (run_dir / ".hydra" / "config.yaml").exists():
        run_cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    m = run_cfg.method if run_cfg is not None and run_cfg.method.get("name") == "rpt" else None
    device = pick_device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(ckpt)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=dtype).to(device).eval()
    opts = EvalOptions(
        thresholds=tuple(args.thresholds), modes=tuple(args.modes),
        template=args.template or (m.template if m else "v0"),
        min_context=args.min_context or (m.min_context if m else 8),
        max_context=args.max_context or (m.max_context if m else 4096), target_tokens=args.target_tokens,
        max_new_tokens=args.max_new_tokens or (run_cfg.rollout.max_new_tokens if run_cfg is not None else 256),
        temperature=args.temperature, samples=args.samples, seed=args.seed,
        think_open=m.think_open if m else "<think>", think_close=m.think_close if m else "</think>")
    texts = _load_texts(args, run_cfg)
    docs = [d for d in tokenizer(texts, add_special_tokens=False)["input_ids"] if len(d) > opts.min_context]
    proxy_path = args.proxy
    if proxy_path is None and run_dir is not None and (run_dir / "checkpoints" / "step_000000" / "policy").exists():
        proxy_path = str(run_dir / "checkpoints" / "step_000000" / "policy")
    proxy = model if proxy_path is None else AutoModelForCausalLM.from_pretrained(proxy_path, dtype=dtype).to(device).eval()
    print(f"proxy for the entropy splits: {proxy_path or ckpt}", file=sys.stderr)
    entropies = document_entropies(proxy, docs, k=args.top_k, pad_id=tokenizer.pad_token_id)
    items = select_positions(docs, entropies, min(opts.thresholds), args.num_positions, opts.min_context, args.seed)
    result = evaluate_model(model, tokenizer, docs, items, opts)
    result.update({"checkpoint": str(ckpt), "proxy": proxy_path or str(ckpt), "num_docs": len(docs)})
    out = args.out or (ckpt.parent / "eval" if ckpt.name == "policy" else ckpt / "eval")
    path = write_result(result, out, "next_token_accuracy", f"next-token accuracy (%) of {ckpt}")
    print(to_markdown(result, f"next-token accuracy (%) of {ckpt}"))
    print(f"\nwritten: {path} (+ .json, .csv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
