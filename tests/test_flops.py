"""MFU's FLOP count against a count by hand, and the learner throughput benchmark end to end (CPU)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import LlamaConfig, LlamaForCausalLM

from rlpretrain.learner.flops import peak_tflops, train_flops_per_token

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("tied", [True, False])
def test_flops_per_token_by_hand(tied):
    d, inter, layers, heads, kv, hd, vocab, seq = 64, 96, 3, 4, 2, 16, 50, 128
    model = LlamaForCausalLM(LlamaConfig(hidden_size=d, intermediate_size=inter, num_hidden_layers=layers,
                                         num_attention_heads=heads, num_key_value_heads=kv, head_dim=hd,
                                         vocab_size=vocab, tie_word_embeddings=tied))
    per_layer = d * heads * hd + 2 * d * kv * hd + heads * hd * d + 3 * d * inter  # q, k+v, o, MLP
    weights = layers * per_layer + vocab * d  # the LM head multiplies whether or not it is tied
    assert train_flops_per_token(model, seq) == 6 * weights + 12 * layers * heads * hd * seq


def test_peak_by_device_name():
    assert peak_tflops("NVIDIA H200") == 989.0
    assert peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert peak_tflops("cpu") is None


@pytest.mark.slow
def test_throughput_benchmark_runs_on_the_cpu():
    # a fresh single-rank rendezvous: DeepSpeed tests earlier in this process set MASTER_PORT to a port it holds
    rendezvous = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    env = {k: v for k, v in os.environ.items() if k not in rendezvous}
    proc = subprocess.run([sys.executable, "benchmarks/bench_learner_throughput.py", "--model", "tiny",
                           "--precision", "fp32", "--zero", "2", "3", "--seq-len", "64", "--tokens", "256",
                           "--micro-tokens", "128", "--steps", "2", "--warmup", "1", "--peak-tflops", "1e-6"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # a peak far below the CPU's keeps the printed MFU (0.1% steps) well above 0 however loaded the machine
    per_token = []
    for stage in (2, 3):
        line = re.search(rf"ZeRO-{stage}: step [\d.]+ s, ([\d,]+) tokens/s, [\d.]+ TFLOP/s per device, MFU +([\d.]+)%",
                         proc.stdout)
        assert line, proc.stdout
        tokens_per_s, mfu = int(line[1].replace(",", "")), float(line[2])
        assert tokens_per_s > 0 and mfu > 0, proc.stdout
        per_token.append(mfu / tokens_per_s)
    # MFU is measured throughput x FLOPs per token / peak: the same model gives the same ratio at either stage
    assert per_token[0] == pytest.approx(per_token[1], rel=0.01), proc.stdout
