"""The DeepSpeed learner's training throughput: tokens per second and model FLOPs utilisation (MFU).

A randomly initialised model of a published shape (no download) trains with next-token loss on
random tokens, through the project's own learner (rlpretrain/learner/deepspeed.py), for each ZeRO
stage asked. MFU is PaLM's (rlpretrain/learner/flops.py) against the GPU's dense bf16 peak.

    # one GPU, or the CPU (--model tiny --precision fp32)
    python benchmarks/bench_learner_throughput.py --model qwen2.5-0.5b --zero 2 3
    # 8 GPUs of one node: data parallel over the ranks; throughput is the sum over them
    torchrun --nproc_per_node 8 benchmarks/bench_learner_throughput.py --model qwen3-1.7b --zero 2 3

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
    from rlpretrain.config import EmbeddedModelConfig

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


def build_model(name: str, seq_len: int) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    kind, shape = SHAPES[name]
    config = AutoConfig.for_model(kind, max_position_embeddings=max(seq_len, 512), **shape)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def random_batch(rows: int, seq_len: int, vocab: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    ids = torch.randint(0, vocab, (rows, seq_len), generator=generator)
    loss_mask = torch.ones(rows, seq_len)
    loss_mask[:, 0] = 0  # the first token has nothing to be predicted from
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "loss_mask": loss_mask}


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_stage(args, stage: int) -> dict:
    from rlpretrain.algorithms.objectives import NextTokenObjective
    from rlpretrain.config import LearnerConfig
    from rlpretrain.learner.deepspeed import DeepSpeedLearner
    from rlpretrain.learner.flops import train_flops_per_token

    model = build_model(args.model, args.seq_len)
    flops_per_token = train_flops_per_token(model, args.seq_len)  # before ZeRO-3 partitions the weights
    params = sum(p.numel() for p in model.parameters())
    cfg = OmegaConf.structured(LearnerConfig(lr=1e-5, precision=args.precision,
                                             max_tokens_per_micro_batch=args.micro_tokens))
    cfg.deepspeed.zero_stage = stage
    learner = DeepSpeedLearner(cfg, model, total_steps=args.warmup + args.steps)
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    generator = torch.Generator().manual_seed(rank)
    rows = max(1, args.tokens // args.seq_len)
    objective = NextTokenObjective("token_mean")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(args.warmup + args.steps):
        batch = random_batch(rows, args.seq_len, model.config.vocab_size, generator)
        _sync()
        start = time.perf_counter()
        learner.train_step(batch, objective)
        _sync()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    tokens_per_s = rows * args.seq_len * world / step_s
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
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's peak TFLOP/s for MFU (default: known GPUs' dense bf16 peak)")
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the results to this JSON file")
    args = parser.parse_args()

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    peak = args.peak_tflops or (peak_tflops(device) if args.precision == "bf16" else None)
    results = [bench_stage(args, stage) for stage in args.zero]
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
    if args.json:
        for r in results:
            r["mfu"] = r["tflops_per_device"] / peak if peak else None
        info = {"model": args.model, "precision": args.precision, "device": device, "world": world,
                "seq_len": args.seq_len, "rows": max(1, args.tokens // args.seq_len), "steps": args.steps}
        with open(args.json, "w") as f:
            json.dump({**info, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
