"""RPT's proxy model for the entropy pre-pass: which model scores positions, and what names it in a cache key."""

from __future__ import annotations

from rlpretrain.models.device import module_device


def load_proxy(path: str | None, tokenizer, fallback_module):
    """The proxy model: `fallback_module` (the policy's initial weights) when path is None."""
    if not path:
        return fallback_module
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    proxy_tok = AutoTokenizer.from_pretrained(path)
    if proxy_tok.get_vocab() != {k: v for k, v in tokenizer.get_vocab().items() if k in proxy_tok.get_vocab()}:
        raise ValueError(f"method.proxy_model '{path}' has another vocabulary than the policy: "
                         "the entropy positions would not line up")
    device = module_device(fallback_module)  # beside the policy: the pre-pass scores on the same device
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16 if device.type == "cuda" else torch.float32
                                                ).to(device).eval()


def proxy_identity(cfg) -> dict:
    m = cfg.method
    if m.proxy_model:
        return {"proxy": m.proxy_model}
    from omegaconf import OmegaConf
    emb = OmegaConf.to_container(cfg.model.embedded, resolve=True) if cfg.model.name_or_path.startswith("embedded:") else None
    return {"proxy": cfg.model.gguf_file or cfg.model.name_or_path, "embedded": emb}
