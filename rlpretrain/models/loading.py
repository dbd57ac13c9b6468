"""Loading a policy and tokenizer: the embedded tiny model, a local directory or a hub id."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from rlpretrain.models.build_cache import cache_root
from rlpretrain.models.embedded import EmbeddedModelConfig, ensure_embedded_model
from rlpretrain.models.gguf import ensure_gguf_model
from rlpretrain.models.special_tokens import ensure_think_tokens

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class ModelConfig:
    """The `model` group."""
    name_or_path: str = "embedded:tiny"
    dtype: str = "float32"
    add_think_tokens: bool = True  # add <think>/</think> as special tokens if the tokenizer lacks them
    think_token_init: str = "pieces"  # added tokens' embeddings: pieces (mean of the tag's old pieces) | mean (of all)
    gguf_file: Optional[str] = None  # a local GGUF (path or pkg:MODULE/FILE), converted once; name_or_path is then a label
    trust_remote_code: bool = False
    cache_dir: Optional[str] = None  # where embedded/GGUF models are built; default ~/.cache/rlpretrain
    embedded: EmbeddedModelConfig = field(default_factory=EmbeddedModelConfig)


class ModelLoadError(ValueError):
    pass


def pick_device(name: str) -> torch.device:
    """`device=auto|cpu|cuda` (or cuda:N): auto takes CUDA when torch sees it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda (or cuda:N), got '{name}'")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={name}, but torch {torch.__version__} sees no CUDA device (built for CUDA "
                           f"{torch.version.cuda or 'none: a CPU-only build'}): install a CUDA build of torch, "
                           "or run with device=cpu or device=auto")
    return torch.device(name)


def resolve_model_path(cfg) -> str:
    if cfg.gguf_file:  # name_or_path is then only the model's label
        return str(ensure_gguf_model(cfg.gguf_file, cache_root(cfg)))
    path = cfg.name_or_path
    if path.startswith("embedded:"):
        return str(ensure_embedded_model(path.split(":", 1)[1], cfg.embedded, cfg.cache_dir))
    looks_local = path.startswith((".", "/", "~")) or os.sep in path and path.count("/") != 1
    if looks_local and not os.path.isdir(os.path.expanduser(path)):
        raise ModelLoadError(f"model.name_or_path '{path}' does not exist (not a directory)")
    return os.path.expanduser(path)


def load_model_and_tokenizer(cfg, device: torch.device):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if cfg.dtype not in DTYPES:
        raise ModelLoadError(f"model.dtype must be one of {sorted(DTYPES)}, got '{cfg.dtype}'")
    path = resolve_model_path(cfg)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=cfg.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=DTYPES[cfg.dtype],
                                                     trust_remote_code=cfg.trust_remote_code)
    except OSError as e:
        raise ModelLoadError(f"cannot load model.name_or_path '{cfg.name_or_path}': it is neither a local model "
                             f"directory nor a reachable Hugging Face model ({e})") from e
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if cfg.add_think_tokens:
        ensure_think_tokens(tokenizer, model, init=cfg.think_token_init)
    return tokenizer, model.to(device)


def load_policy(directory: Path, dtype: str, device: torch.device):
    """(tokenizer, model in eval mode on `device`) of a saved policy, e.g. CHECKPOINT/policy."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=DTYPES[dtype]).to(device).eval()
    return tokenizer, model
