"""Where a module runs, and moving a batch there: the one place tensors change device.

Batches are built on the CPU (padding, micro-batch splits, advantages); every consumer that runs
a module moves its inputs with `to_device(batch, module_device(module))` and hands results back
on the CPU. Nothing else in the package calls `.to(device)` on a batch.
"""

from __future__ import annotations

import torch


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of the module's first parameter. A DeepSpeed engine and a peft wrapper are modules
    whose parameters are the wrapped model's, so this is the wrapped model's device (ZeRO-3 keeps an
    empty placeholder of each parameter on the device)."""
    try:
        return next(module.parameters()).device
    except StopIteration:
        raise ValueError(f"{type(module).__name__} has no parameters: its device is unknown") from None


def to_device(batch, device: torch.device | str):
    """`batch` with every tensor on `device`, in nested dicts too; other values as they are.
    Host-to-GPU copies are non-blocking (the stream orders them before the kernels that read them);
    copies to the CPU block, since the caller may read them at once."""
    device = torch.device(device)
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    return batch
