"""Model FLOPs per trained token and MFU, as PaLM defines them (Chowdhery et al. 2022, Appendix B).

A training token costs 6 FLOPs per weight it passes through in a matmul (2 forward, 4 backward)
plus 12 · layers · heads · head_dim · seq_len for attention scores and values. Rematerialisation
does not count: MFU measures the model's work, not the hardware's.
"""

from __future__ import annotations

import torch

# Dense bf16 tensor-core peaks, TFLOP/s, from NVIDIA's data sheets (A100: 312; H100 SXM and H200,
# which has the H100's compute: 989). Matched against torch.cuda.get_device_name.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0}


def matmul_weights(model: torch.nn.Module) -> int:
    """Weights that multiply activations: every nn.Linear, the LM head included (also when it is tied
    to the input embedding, whose lookup costs nothing). Count before ZeRO-3 partitions them."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def train_flops_per_token(model: torch.nn.Module, seq_len: int) -> float:
    text = model.config.get_text_config(decoder=True)
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    attention = 12 * text.num_hidden_layers * text.num_attention_heads * head_dim * seq_len
    return 6 * matmul_weights(model) + attention


def peak_tflops(device_name: str) -> float | None:
    """The bf16 peak of a known GPU, by name; None when unknown (give it on the command line)."""
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in device_name), None)
