"""Peak memory and time of per-token log-probs (forward and backward), whole logits vs chunked.

Tokens' final hidden states go through an LM head of Qwen's vocabulary (151,936) to per-token
log-probs, the quantity RL trains on (rlpretrain/algorithms/chunked_logprobs.py). The whole-logits
baseline is the plain path (objectives.py: the model's [tokens x vocab] logits, then log-probs);
each chunked variant is learner.logprob_chunk_tokens. Same run, same inputs, CPU, fp32.

Peak memory is the process's peak resident set above its level before the computation (Linux:
VmHWM, reset through /proc/self/clear_refs), which counts every tensor torch allocates.

    python benchmarks/bench_logprob_memory.py --tokens 1024 --hidden 256 --chunks 128 256 512
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import torch


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _measure(fn) -> tuple[float, float]:
    """(peak MiB above the starting level, seconds) of one call."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident set
    start_kib = _rss_kib("VmRSS")
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    return (_rss_kib("VmHWM") - start_kib) / 1024, seconds


def main() -> None:
    from rlpretrain.algorithms.chunked_logprobs import chunked_token_stats
    from rlpretrain.algorithms.losses import entropy_from_logits, token_logprobs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--vocab", type=int, default=151936)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--chunks", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--entropy", action="store_true", help="also the entropy (entropy_coef > 0)")
    parser.add_argument("--repeats", type=int, default=3, help="median time over this many runs")
    args = parser.parse_args()

    g = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(args.hidden, args.vocab, bias=False)
    hidden = torch.randn(args.tokens, args.hidden, generator=g, requires_grad=True)
    labels = torch.randint(0, args.vocab, (args.tokens,), generator=g)

    def full():
        logits = head(hidden).float()
        loss = token_logprobs(logits, labels, 0.7).sum()
        if args.entropy:
            loss = loss + entropy_from_logits(logits, 0.7).sum()
        loss.backward()

    def chunked(size):
        def run():
            logp, entropy = chunked_token_stats(hidden, head, labels, 0.7, size, with_entropy=args.entropy)
            (logp.sum() + (entropy.sum() if args.entropy else 0)).backward()
        return run

    variants = [("whole logits", full)] + [(f"chunks of {c}", chunked(c)) for c in args.chunks]
    # the parameter and input gradients exist before the first measurement, so no variant pays for them
    full()
    rows = []
    for name, fn in variants:
        peaks, times = zip(*(_measure(fn) for _ in range(args.repeats)))
        rows.append((name, max(peaks), statistics.median(times)))
    logits_mib = args.tokens * args.vocab * 4 / 2 ** 20
    print(f"{args.tokens} tokens, vocab {args.vocab:,}, hidden {args.hidden}, fp32 on the CPU; log-probs"
          f"{' and entropy' if args.entropy else ''}, forward + backward; one fp32 [tokens x vocab] = {logits_mib:.0f} MiB; "
          f"median time of {args.repeats}, peak over them")
    base_peak, base_time = rows[0][1], rows[0][2]
    print(f"{'variant':<16} {'peak MiB':>9} {'vs whole':>9} {'time s':>8} {'vs whole':>9}")
    for name, peak, seconds in rows:
        print(f"{name:<16} {peak:9.0f} {peak / base_peak:9.2f} {seconds:8.3f} {seconds / base_time:9.2f}")


if __name__ == "__main__":
    main()
