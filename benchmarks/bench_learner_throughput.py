"""The DeepSpeed learner's training throughput: tokens per second and model FLOPs utilisation (MFU).

A randomly initialised model of a published shape (no download) trains with next-token loss on
random tokens, through the project's own learner (rlpretrain/learner/deepspeed.py), for each ZeRO
stage asked. MFU is PaLM's (rlpretrain/learner/flops.py) against the GPU's dense bf16 peak.

    # one GPU, or the CPU (--model tiny --precision fp32)
    python benchmarks/bench_learner_throughput.py --model qwen2.5-0.5b --zero 2 3
    # 8 GPUs of one node: data parallel over the ranks; throughput is the sum over them
    torchrun --nproc_per_node 8 benchmarks/bench_learner_throughput.py --model qwen3-1.7b --zero 2 3
    # the learner efficiency options (docs/scale.md), each against the baseline, in one run
    python benchmarks/bench_learner_throughput.py --model qwen3-1.7b --zero 2 --variants all

`--json OUT` also writes the figures to OUT (scripts/gpu_check_summary.py reads them).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time

import torch
from omegaconf import OmegaConf


def _embedded_shape() -> dict:
    """The embedded default's shape, from its settings (rlpretrain/config.py, EmbeddedModelConfig)."""
    from rlpretrain.models.embedded import EmbeddedModelConfig

    e = EmbeddedModelConfig()
    return dict(vocab_size=e.vocab_size, hidden_size=e.hidden_size, intermediate_size=e.intermediate_size,
                num_hidden_layers=e.num_layers, num_attention_heads=e.num_heads, num_key_value_heads=e.num_heads,
                tie_word_embeddings=True)


# Shapes from each model's published config.json (Qwen/Qwen2.5-0.5B, Qwen/Qwen3-1.7B); "tiny" is the
# embedded default's.
SHAPES = {
    "tiny": ("llama", _embedded_shape()),
    "qwen2.5-0.5b": ("qwen2", dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                   num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True)),
    "qwen3-1.7b": ("qwen3", dict(vocab_size=151936, hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
                                 num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                                 tie_word_embeddings=True)),
}


# learner efficiency options (rlpretrain/learner/efficiency.py) measured by --variants, one at a time
# and all together; "baseline" is none of them
VARIANTS = {
    "baseline": {},
    "chunked": {"logprob_chunk_tokens": 4096},
    "packed": {"padding_free": True},
    "checkpointing": {"gradient_checkpointing": True},
    "liger": {"liger_kernel": True},
    "compile": {"compile": True},
}
VARIANTS["combined"] = {k: v for options in VARIANTS.values() for k, v in options.items()}
# what scripts/gpu_check.sh measures against the baseline: the options that pay without flash-attention
# (packing needs varlen attention to pay; compile's warm-up would eat the check's time budget)
VARIANTS["fused"] = {**VARIANTS["chunked"], **VARIANTS["checkpointing"], **VARIANTS["liger"]}


def build_model(name: str, seq_len: int, attn: str | None = None) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    kind, shape = SHAPES[name]
    config = AutoConfig.for_model(kind, max_position_embeddings=max(seq_len, 512), **shape)
    torch.manual_seed(0)
    extra = {"attn_implementation": attn} if attn else {}
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32, **extra)


def random_batch(rows: int, seq_len: int, vocab: int, generator: torch.Generator,
                 ragged: bool = False) -> dict[str, torch.Tensor]:
    """Full rows, or (ragged) rows of uniform random lengths in [seq_len / 8, seq_len], right-padded."""
    ids = torch.randint(0, vocab, (rows, seq_len), generator=generator)
    lengths = (torch.randint(seq_len // 8, seq_len + 1, (rows,), generator=generator) if ragged
               else torch.full((rows,), seq_len))
    attention_mask = (torch.arange(seq_len)[None] < lengths[:, None]).long()
    loss_mask = attention_mask.float()
    loss_mask[:, 0] = 0  # the first token has nothing to be predicted from
    return {"input_ids": ids * attention_mask, "attention_mask": attention_mask, "loss_mask": loss_mask}


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_stage(args, stage: int, options: dict | None = None) -> dict:
    from rlpretrain.algorithms.objectives import NextTokenObjective
    from rlpretrain.learner.config import LearnerConfig
    from rlpretrain.learner.deepspeed import DeepSpeedLearner
    from rlpretrain.learner.flops import train_flops_per_token

    model = build_model(args.model, args.seq_len, args.attn)
    flops_per_token = train_flops_per_token(model, args.seq_len)  # before ZeRO-3 partitions the weights
    params = sum(p.numel() for p in model.parameters())
    cfg = OmegaConf.structured(LearnerConfig(lr=1e-5, precision=args.precision,
                                             max_tokens_per_micro_batch=args.micro_tokens, **(options or {})))
    cfg.deepspeed.zero_stage = stage
    learner = DeepSpeedLearner(cfg, model, total_steps=args.warmup + args.steps)
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    generator = torch.Generator().manual_seed(rank)
    rows = max(1, args.tokens // args.seq_len)
    objective = NextTokenObjective("token_mean")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    times, real = [], []
    for step in range(args.warmup + args.steps):
        batch = random_batch(rows, args.seq_len, model.config.vocab_size, generator, args.ragged)
        _sync()
        start = time.perf_counter()
        learner.train_step(batch, objective)
        _sync()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
            real.append(int(batch["attention_mask"].sum()))
    step_s = statistics.median(times)
    # real tokens only (ragged rows: padding is not work); flops per token at seq_len over-count
    # attention for shorter rows a little, which favours no variant
    tokens_per_s = statistics.median(real) * world / step_s
    result = {"stage": stage, "params": params, "step_s": step_s, "tokens_per_s": tokens_per_s,
              "tflops_per_device": flops_per_token * tokens_per_s / world / 1e12,
              "peak_mem_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if torch.cuda.is_available() else None}
    del learner, model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result


def main() -> None:
    from rlpretrain.learner.flops import peak_tflops

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(SHAPES), default="qwen2.5-0.5b")
    parser.add_argument("--zero", type=int, nargs="+", default=[2, 3], help="ZeRO stages to measure")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--tokens", type=int, default=16384, help="tokens per rank and optimizer step")
    parser.add_argument("--micro-tokens", type=int, default=8192, help="learner.max_tokens_per_micro_batch")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per stage")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS) + ["all"], default=None,
                        help="learner efficiency options to measure against the baseline, at the first --zero stage")
    parser.add_argument("--ragged", action="store_true", help="rows of random lengths (what padding_free removes)")
    parser.add_argument("--attn", default=None, help="attn_implementation, e.g. flash_attention_2 (packed rows "
                                                     "then run varlen); default: transformers' (sdpa)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's peak TFLOP/s for MFU (default: known GPUs' dense bf16 peak)")
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the results to this JSON file")
    args = parser.parse_args()

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    peak = args.peak_tflops or (peak_tflops(device) if args.precision == "bf16" else None)
    if args.variants:
        names = list(VARIANTS) if "all" in args.variants else ["baseline"] + [v for v in args.variants if v != "baseline"]
        if not torch.cuda.is_available():  # Liger's kernels are Triton GPU kernels
            names = [n for n in names if n != "liger"]
            for options in VARIANTS.values():
                options.pop("liger_kernel", None)
        results = {}
        for name in names:
            results[name] = {**bench_stage(args, args.zero[0], VARIANTS[name]), "variant": name}
            write_json(args, list(results.values()), peak, device)  # after each: a later one may run out of time
        report_variants(args, names, results, peak, device)
        return
    results = [bench_stage(args, stage) for stage in args.zero]
    write_json(args, results, peak, device)
    if torch.distributed.get_rank() != 0:
        return
    world = torch.distributed.get_world_size()
    print(f"{args.model} ({results[0]['params'] / 1e6:.1f}M parameters), {args.precision}, {world} x {device}; "
          f"{args.tokens // args.seq_len} rows x {args.seq_len} tokens per rank and step, "
          f"micro-batches of <= {args.micro_tokens} tokens; median of {args.steps} steps after {args.warmup}")
    for r in results:
        mfu = f"{100 * r['tflops_per_device'] / peak:5.1f}%" if peak else "n/a (give --peak-tflops)"
        mem = f", peak memory {r['peak_mem_gib']:.1f} GiB" if r["peak_mem_gib"] is not None else ""
        print(f"ZeRO-{r['stage']}: step {r['step_s']:.3f} s, {r['tokens_per_s']:,.0f} tokens/s, "
              f"{r['tflops_per_device']:.2f} TFLOP/s per device, MFU {mfu}{mem}")


def write_json(args, results: list[dict], peak: float | None, device: str) -> None:
    """--json OUT: the figures with MFU, one entry per ZeRO stage or variant (scripts/gpu_check_summary.py)."""
    if not args.json or torch.distributed.get_rank() != 0:
        return
    results = [{**r, "mfu": r["tflops_per_device"] / peak if peak else None} for r in results]
    info = {"model": args.model, "precision": args.precision, "device": device,
            "world": torch.distributed.get_world_size(), "seq_len": args.seq_len,
            "rows": max(1, args.tokens // args.seq_len), "steps": args.steps, "ragged": args.ragged}
    with open(args.json, "w") as f:
        json.dump({**info, "results": results}, f, indent=1)


def report_variants(args, names: list[str], results: dict, peak: float | None, device: str) -> None:
    if torch.distributed.get_rank() != 0:
        return
    world = torch.distributed.get_world_size()
    print(f"{args.model}, {args.precision}, ZeRO-{args.zero[0]}, {world} x {device}; {args.tokens // args.seq_len} "
          f"{'ragged ' if args.ragged else ''}rows x {args.seq_len} tokens per rank and step, micro-batches of <= "
          f"{args.micro_tokens} tokens, attention {args.attn or 'default'}; median of {args.steps} steps after {args.warmup}")
    print(f"{'variant':<14} {'step s':>8} {'tok/s':>10} {'TFLOP/s':>8} {'MFU':>6} {'peak GiB':>9} {'tok/s vs base':>14}")
    base = results["baseline"]["tokens_per_s"]
    for name in names:
        r = results[name]
        mfu = f"{100 * r['tflops_per_device'] / peak:5.1f}%" if peak else "   n/a"
        mem = f"{r['peak_mem_gib']:9.1f}" if r["peak_mem_gib"] is not None else "      n/a"
        print(f"{name:<14} {r['step_s']:8.3f} {r['tokens_per_s']:10,.0f} {r['tflops_per_device']:8.2f} {mfu:>6} {mem} "
              f"{r['tokens_per_s'] / base:14.2f}")
    print("options: " + "; ".join(f"{n}: {VARIANTS[n] or 'none'}" for n in names))


if __name__ == "__main__":
    main()
