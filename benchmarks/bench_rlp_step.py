"""Where an RLP step's time goes on a published model shape: generate / score / update.

A randomly initialised body of a published shape (SHAPES in bench_learner_throughput.py: the
layers, heads and widths of the model's config.json) with the embedded tokenizer (vocabulary 320,
so the body is what is measured; no download) runs the project's own loop (rlpretrain/loop.py) on
the synthetic documents for warm-up + measured steps. Thoughts rarely close on random weights, so
nearly every one runs to --thought-tokens. --precision bf16 holds the weights in bf16 and trains
under bf16 autocast, as experiment=rlp_qwen3_1.7b does, so generate and score run in bf16 too.
Prints the medians of the loop's own timings (timings.jsonl) over the measured steps, the HF
engine's decode rate and the peak GPU memory.

    # one GPU: 64 contexts x G=8 thoughts of 128 tokens, bf16
    python benchmarks/bench_rlp_step.py --model qwen2.5-0.5b
    # the CPU, tiny shape
    python benchmarks/bench_rlp_step.py --model tiny --contexts 4 --group 2 --thought-tokens 8 --precision fp32

Extra key=value arguments are Hydra overrides for the run (e.g. learner=deepspeed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_learner_throughput import SHAPES  # noqa: E402  (the one table of published shapes)


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from rlpretrain.cli import CONF_DIR
    from rlpretrain.config import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def save_random_body(name: str, directory: Path, cache_dir: str | None) -> int:
    """The embedded tokenizer beside a random-init model of `name`'s shape; returns its parameter count."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from rlpretrain.models.loading import load_model_and_tokenizer

    # only the tokenizer is kept; a 1-step warm-up makes the embedded build quick
    cfg = compose(["model.embedded.warmup_steps=1", *([f"model.cache_dir={cache_dir}"] if cache_dir else [])])
    tokenizer, _ = load_model_and_tokenizer(cfg.model, torch.device("cpu"))
    kind, shape = SHAPES[name]
    config = AutoConfig.for_model(kind, **{**shape, "vocab_size": len(tokenizer), "max_position_embeddings": 4096,
                                           "bos_token_id": tokenizer.bos_token_id,
                                           "eos_token_id": tokenizer.eos_token_id,
                                           "pad_token_id": tokenizer.pad_token_id})
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    from rlpretrain.loop import train
    from rlpretrain.tracking import read_metrics

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(SHAPES), default="qwen2.5-0.5b")
    parser.add_argument("--contexts", type=int, default=64, help="method.contexts_per_step")
    parser.add_argument("--group", type=int, default=8, help="method.group_size (G thoughts per context)")
    parser.add_argument("--thought-tokens", type=int, default=128, help="rollout.max_new_tokens")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16",
                        help="learner.precision, and model.dtype to match (as experiment=rlp_qwen3_1.7b)")
    parser.add_argument("--steps", type=int, default=3, help="measured steps")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--cache-dir", default=None, help="model.cache_dir for the embedded tokenizer")
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the results to this JSON file")
    args, overrides = parser.parse_known_args()
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be at least 1 and --warmup at least 0")
    if any(o.startswith("-") or "=" not in o for o in overrides):
        parser.error(f"unknown arguments {overrides}: besides the flags above, only key=value overrides")

    with tempfile.TemporaryDirectory() as tmp:
        params = save_random_body(args.model, Path(tmp) / "model", args.cache_dir)
        cfg = compose([
            f"model.name_or_path={Path(tmp) / 'model'}", "device=auto", f"learner.precision={args.precision}",
            f"model.dtype={'bfloat16' if args.precision == 'bf16' else 'float32'}",
            f"method.contexts_per_step={args.contexts}", f"method.group_size={args.group}",
            f"rollout.max_new_tokens={args.thought_tokens}", "method.position_sampling=random",
            f"trainer.max_steps={args.warmup + args.steps}", f"run_dir={Path(tmp) / 'run'}",
            "tracking.progress=false", "tracking.tensorboard=false", "checkpoint.every=0", *overrides,
        ])
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        train(cfg)
        timings = read_metrics(cfg.run_dir, "timings.jsonl")[args.warmup:]
        metrics = read_metrics(cfg.run_dir)[args.warmup:]

    def median(key: str) -> float:
        return statistics.median(t[key] for t in timings)

    thoughts = args.contexts * args.group
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    result = {
        "model": args.model, "params": params, "device": device, "precision": args.precision,
        "contexts": args.contexts, "group": args.group, "thought_tokens": args.thought_tokens,
        "steps": args.steps, "warmup": args.warmup,
        "step_s": median("time/step"), "generate_s": median("time/generate"), "score_s": median("time/score"),
        "update_s": median("time/update"), "tokens_per_s": median("tokens_per_s"),
        "thought_len_mean": statistics.fmean(m["thought_len_mean"] for m in metrics),
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if torch.cuda.is_available() else None,
    }
    # decode rate: thought tokens sampled per second of generate (which includes prefill and S_pred)
    result["decode_tokens_per_s"] = thoughts * result["thought_len_mean"] / result["generate_s"]
    step = result["step_s"]
    print(f"RLP step, {args.model} body ({params / 1e6:.1f}M parameters, random init), {args.precision}, {device}; "
          f"{args.contexts} contexts x G={args.group}, thoughts <= {args.thought_tokens} tokens "
          f"(mean {result['thought_len_mean']:.1f}); median of {args.steps} steps after {args.warmup}")
    print(f"step {step:.3f} s = generate {result['generate_s']:.3f} ({100 * result['generate_s'] / step:.0f}%) "
          f"+ score {result['score_s']:.3f} ({100 * result['score_s'] / step:.0f}%) "
          f"+ update {result['update_s']:.3f} ({100 * result['update_s'] / step:.0f}%); "
          f"decode {result['decode_tokens_per_s']:,.0f} tokens/s"
          + (f"; peak memory {result['peak_mem_gib']:.1f} GiB" if result["peak_mem_gib"] is not None else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
