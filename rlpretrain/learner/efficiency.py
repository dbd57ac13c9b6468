"""The learner's efficiency options (docs/scale.md, "Learner efficiency options"), applied to its
module once, before the learner wraps it. All are off by default; each leaves the loss unchanged.

- logprob_chunk_tokens / padding_free: how log-probs are computed from the module
  (models/forward_options.py, algorithms/token_stats.py).
- gradient_checkpointing: transformers' activation checkpointing, non-reentrant.
- liger_kernel: Liger's Triton kernels (RMSNorm, RoPE, SwiGLU) patched into the model; CUDA only.
  Its fused linear cross-entropy is left off: it returns a mean loss, and RL needs per-token
  log-probs (logprob_chunk_tokens does that job).
- compile: torch.compile of each decoder layer (one graph, reused by every layer; regional
  compilation compiles in seconds where the whole model would take minutes, and survives the
  varying micro-batch shapes with dynamic shapes). Log-probs then run without a KV cache, so
  without prefix sharing (a cache's per-layer state would recompile the layers).
"""

from __future__ import annotations

import torch

from rlpretrain.models.device import module_device
from rlpretrain.models.forward_options import ForwardOptions, set_forward_options


FLAGS = ("padding_free", "gradient_checkpointing", "liger_kernel", "compile")


def _option(cfg, name: str):
    return getattr(cfg, name, 0 if name == "logprob_chunk_tokens" else False)  # a config without it: off


def check_options(cfg) -> None:
    chunk = _option(cfg, "logprob_chunk_tokens")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 0:
        raise ValueError(f"learner.logprob_chunk_tokens must be an integer >= 0 (0: off), got {chunk!r}")
    for flag in FLAGS:
        if not isinstance(_option(cfg, flag), bool):
            raise ValueError(f"learner.{flag} must be true or false, got {_option(cfg, flag)!r}")


def apply_efficiency_options(cfg, module: torch.nn.Module) -> None:
    """Apply the options in `cfg` (a LearnerConfig) to the Hugging Face model `module`, in place."""
    check_options(cfg)
    if _option(cfg, "liger_kernel"):
        apply_liger(module)
    if _option(cfg, "gradient_checkpointing"):
        enable = getattr(module, "activation_checkpointing_enable", None)  # transformers >= 5.2x's name
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            module.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if _option(cfg, "compile"):
        compile_layers(module)
    set_forward_options(module, ForwardOptions(_option(cfg, "logprob_chunk_tokens"), _option(cfg, "padding_free"),
                                               _option(cfg, "compile")))


def apply_liger(module: torch.nn.Module) -> None:
    device = module_device(module)
    if device.type != "cuda":
        raise ValueError(f"learner.liger_kernel needs the model on a CUDA device (Liger's kernels are Triton GPU "
                         f"kernels); it is on {device}")
    try:
        from liger_kernel.transformers import _apply_liger_kernel_to_instance
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except ImportError as e:
        raise ImportError("learner.liger_kernel needs liger-kernel: pip install -c constraints.txt 'rlpretrain[gpu]'") from e
    model_type = module.config.model_type
    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        raise ValueError(f"learner.liger_kernel: Liger has no kernels for model type '{model_type}'; "
                         f"it has: {', '.join(sorted(MODEL_TYPE_TO_APPLY_LIGER_FN))}")
    _apply_liger_kernel_to_instance(model=module, cross_entropy=False, fused_linear_cross_entropy=False)


def compile_layers(module: torch.nn.Module) -> None:
    """torch.compile every decoder layer (the classes transformers names in `_no_split_modules`)."""
    names = set(getattr(module, "_no_split_modules", None) or ())
    layers = [m for m in module.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(f"learner.compile: no decoder layers found in {type(module).__name__} "
                         "(it names none in _no_split_modules)")
    for layer in layers:
        layer.compile(dynamic=True)
