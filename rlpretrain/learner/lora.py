"""LoRA adapters via peft, for either learner (`learner.lora.r=8`; r=0 trains every weight).

The policy is wrapped before the optimizer is built, so only the adapters train. Everything
outside the learner sees merged weights under the base model's names: rollout engines and the EMA
teacher (`merged_named_weights`), and the HF-format export. Checkpoints also keep the adapters in
peft's format (`adapter/`), which is what resume loads.
"""

from __future__ import annotations

from pathlib import Path

import torch


def apply_lora(module: torch.nn.Module, cfg) -> torch.nn.Module:
    if cfg.r <= 0:
        return module
    from peft import LoraConfig, get_peft_model

    present = {name.rsplit(".", 1)[-1] for name, _ in module.named_modules()}
    unknown = [t for t in cfg.target_modules if t not in present]
    if unknown:
        raise ValueError(f"learner.lora.target_modules: {unknown} are not modules of this model "
                         f"(it has e.g. {sorted(present - {''})[:12]})")
    config = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                        target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(module, config)


def is_lora(module) -> bool:
    return hasattr(module, "peft_config")


@torch.no_grad()
def merged_named_weights(model):
    """(base name, W + scale·B·A) for adapted layers, (base name, W) for the rest; no lora_ tensors."""
    from peft.tuners.lora import LoraLayer

    base = model.get_base_model()
    deltas = {}
    for name, layer in base.named_modules():
        if isinstance(layer, LoraLayer):
            deltas[f"{name}.weight"] = sum(layer.get_delta_weight(a) for a in layer.active_adapters)
    for name, tensor in base.state_dict().items():
        if "lora_" in name:
            continue
        name = name.replace(".base_layer", "")
        yield name, tensor + deltas[name].to(tensor.dtype) if name in deltas else tensor


def save_adapter(model, directory: Path) -> None:
    model.save_pretrained(directory, safe_serialization=True)


def load_adapter(model, directory: Path) -> None:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    result = set_peft_model_state_dict(model, load_file(directory / "adapter_model.safetensors"))
    if result.unexpected_keys:
        raise ValueError(f"adapter in {directory} does not fit the model: {result.unexpected_keys[:5]}")
