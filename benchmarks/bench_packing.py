"""Padding removed by learner.padding_free on a ragged RL batch, and the CPU step time padded vs packed.

An RL batch mixes long and short rows: prompts of many lengths, each with G sampled completions of
many lengths (a few run to the length cap). The learner pads each micro-batch to its longest row,
after grouping rows of similar length (learner/microbatch.py, micro_batch_min_fill); padding_free
packs a micro-batch's rows into one row instead (models/packing.py), so no position is padding.
Both train the same policy loss through the torch learner on a small random Qwen3, same batch,
same run. On the CPU attention runs through SDPA with the block-diagonal mask transformers builds
for packed rows; on a GPU use flash-attention, which runs packed rows as variable-length sequences.

    python benchmarks/bench_packing.py
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from omegaconf import OmegaConf


def ragged_rl_batch(prompts: int, group: int, prompt_range, max_completion: int, vocab: int, seed: int):
    """Right-padded rows: uniform prompt lengths; completion lengths log-normal, a tail cut at the cap."""
    from rlpretrain.learner.microbatch import pad_right

    rng = random.Random(seed)
    rows, loss_rows, advantages = [], [], []
    for _ in range(prompts):
        prompt = [rng.randrange(1, vocab) for _ in range(rng.randint(*prompt_range))]
        for _ in range(group):
            n = min(max_completion, max(1, int(rng.lognormvariate(4.0, 0.9))))
            rows.append(prompt + [rng.randrange(1, vocab) for _ in range(n)])
            loss_rows.append([0] * len(prompt) + [1] * n)
            advantages.append(rng.gauss(0, 1))
    return {"input_ids": pad_right(rows, 0), "attention_mask": pad_right([[1] * len(r) for r in rows], 0),
            "loss_mask": pad_right(loss_rows, 0, dtype=torch.float32), "advantages": torch.tensor(advantages)}


def padding_of(micro_batches) -> float:
    real = sum(int(m["attention_mask"].sum()) for m in micro_batches)
    return 1 - real / sum(m["attention_mask"].numel() for m in micro_batches)


def main() -> None:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from rlpretrain.algorithms.objectives import PolicyGradientObjective
    from rlpretrain.algorithms.config import AlgorithmConfig
    from rlpretrain.learner.config import LearnerConfig
    from rlpretrain.learner.microbatch import split_by_tokens
    from rlpretrain.learner.torch import TorchLearner
    from rlpretrain.models.packing import padding_fraction

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--group", type=int, default=4, help="completions per prompt (G)")
    parser.add_argument("--prompt-len", type=int, nargs=2, default=[32, 256])
    parser.add_argument("--max-completion", type=int, default=256)
    parser.add_argument("--micro-tokens", type=int, default=4096, help="learner.max_tokens_per_micro_batch")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant, after one warm-up")
    args = parser.parse_args()

    vocab = 4096
    batch = ragged_rl_batch(args.prompts, args.group, args.prompt_len, args.max_completion, vocab, seed=0)
    objective = PolicyGradientObjective(OmegaConf.structured(AlgorithmConfig()), temperature=1.0)
    variants = {"padded": {}, "packed": {"padding_free": True}}
    results = {}
    for name, options in variants.items():
        torch.manual_seed(0)
        model = Qwen3ForCausalLM(Qwen3Config(vocab_size=vocab, hidden_size=256, intermediate_size=768,
                                             num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                                             head_dim=64, max_position_embeddings=1024, tie_word_embeddings=True))
        cfg = OmegaConf.structured(LearnerConfig(lr=1e-5, max_tokens_per_micro_batch=args.micro_tokens, **options))
        learner = TorchLearner(cfg, model, total_steps=args.steps + 1)
        micro = split_by_tokens(batch, cfg.max_tokens_per_micro_batch, cfg.micro_batch_min_fill,
                                packed=cfg.padding_free)
        times, loss = [], None
        for step in range(args.steps + 1):
            start = time.perf_counter()
            stats = learner.train_step(dict(batch), objective)
            if step > 0:
                times.append(time.perf_counter() - start)
            loss = loss if loss is not None else stats["pg_loss"]
        # packed micro-batches hold no padding: the rows are concatenated
        results[name] = (0.0 if cfg.padding_free else padding_of(micro), len(micro), statistics.median(times), loss)

    rows, real = batch["input_ids"].shape, int(batch["attention_mask"].sum())
    print(f"{rows[0]} rows ({args.prompts} prompts x G={args.group}), {real:,} real tokens, longest {rows[1]}; "
          f"padded to the longest row in one batch: {100 * padding_fraction(batch['attention_mask']):.1f}% padding; "
          f"micro-batches of <= {args.micro_tokens} tokens; Qwen3 shape, hidden 256, 4 layers, fp32 CPU, "
          f"median of {args.steps} steps")
    base = results["padded"][2]
    print(f"{'variant':<8} {'padding':>8} {'micro-batches':>14} {'step s':>8} {'vs padded':>10} {'first loss':>11}")
    for name, (padding, count, seconds, loss) in results.items():
        print(f"{name:<8} {100 * padding:7.1f}% {count:14d} {seconds:8.3f} {seconds / base:10.2f} {loss:11.6f}")


if __name__ == "__main__":
    main()
