"""Checkpoints for exact resume, written atomically.

`checkpoints/step_NNNNNN/` holds the policy (Hugging Face format, loadable with
`from_pretrained`), method models (e.g. `ema/`), and `state.pt`: optimizer, scheduler, RNG states,
the method's state (data cursor, ...), the update's state (a learned critic) and the step. A checkpoint is written into a temporary
directory and renamed into place, so a run killed mid-write leaves the previous one usable.

Size (a 135M model: 2.1 GB in float32 with Adam's moments and RLP's EMA): `checkpoint.dtype=bfloat16`
stores the weights in half the bytes, and `checkpoint.optimizer=false` leaves out the optimizer's
state. Either makes resume approximate: weights rounded to bfloat16, Adam's moments restarted.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from rlpretrain.checks import require
from rlpretrain.seeding import rng_state, set_rng_state

PREFIX = "step_"


@dataclass
class CheckpointConfig:
    """The `checkpoint` group."""
    every: int = 0  # 0: only version 0 and the final step
    keep_last: int = 0  # 0 keeps all
    dtype: str = "float32"  # weights on disk: float32 (exact resume) | bfloat16 | float16 (half the size)
    optimizer: bool = True  # false: no optimizer state (a third of the size; resume restarts Adam's moments)

    def __post_init__(self):
        require(self.every >= 0, "every", ">= 0 (0: only the first and the last step)", self.every)
        require(self.keep_last >= 0, "keep_last", ">= 0 (0: keep all)", self.keep_last)


def checkpoint_dir(root: Path, step: int) -> Path:
    return root / f"{PREFIX}{step:06d}"


def list_checkpoints(root: Path) -> list[Path]:
    if not root.exists():
        return []
    done = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / "state.pt").exists()]
    return sorted(done, key=lambda p: int(p.name[len(PREFIX):]))


WEIGHT_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def first_and_last(run_dir: Path) -> list[tuple[str, Path]]:
    """("before", the first checkpoint) and ("after", the last): what a before/after evaluation compares."""
    ckpts = list_checkpoints(run_dir / "checkpoints")
    if len(ckpts) < 2:
        raise FileNotFoundError(f"{run_dir}: needs the first and a later checkpoint, found {[c.name for c in ckpts]}")
    return [("before", ckpts[0]), ("after", ckpts[-1])]


def cast_weight_files(directory: Path, dtype: str) -> None:
    """Rewrite every safetensors file under directory (policy, EMA, ...) with its float tensors in dtype."""
    import json

    from safetensors.torch import load_file, save_file

    for path in directory.rglob("*.safetensors"):
        tensors = load_file(path)
        save_file({k: v.to(WEIGHT_DTYPES[dtype]) if v.is_floating_point() else v for k, v in tensors.items()},
                  path, metadata={"format": "pt"})
        config = path.parent / "config.json"
        if config.exists():  # so that from_pretrained without a dtype loads what is stored
            cfg = json.loads(config.read_text())
            cfg["dtype"] = dtype
            config.write_text(json.dumps(cfg, indent=2))


def save_checkpoint(root: Path, step: int, tokenizer, learner, method, update=None, keep_last: int = 0,
                    dtype: str = "float32", optimizer: bool = True) -> Path:
    if dtype not in WEIGHT_DTYPES:
        raise ValueError(f"checkpoint.dtype must be one of {sorted(WEIGHT_DTYPES)}, got '{dtype}'")
    root.mkdir(parents=True, exist_ok=True)
    final = checkpoint_dir(root, step)
    tmp = root / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    learner_state = learner.save_checkpoint(tmp)  # the policy in HF format, and the learner's own files
    tokenizer.save_pretrained(tmp / "policy")
    method.save_models(tmp)
    if dtype != "float32":
        cast_weight_files(tmp, dtype)
    if not optimizer:
        learner_state = {k: v for k, v in learner_state.items() if k != "optimizer"}
    torch.save({"step": step, "learner": learner_state, "method": method.state_dict(), "rng": rng_state(),
                "update": update.state_dict() if update is not None else {}}, tmp / "state.pt")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    if keep_last > 0:
        # version 0 is kept: it is the reference every dump is re-scored against
        for old in [p for p in list_checkpoints(root) if p.name != checkpoint_dir(root, 0).name][:-keep_last]:
            shutil.rmtree(old)
    return final


def resolve_resume(root: Path, resume: str | None) -> Path | None:
    if resume is None:
        return None
    if resume == "auto":
        found = list_checkpoints(root)
        return found[-1] if found else None
    path = Path(resume)
    if not (path / "state.pt").exists():
        raise FileNotFoundError(f"resume={resume}: not a checkpoint directory (no state.pt)")
    return path


def load_checkpoint(path: Path, learner, method, update=None) -> int:
    state = torch.load(path / "state.pt", weights_only=False)
    learner.load_checkpoint(path, state["learner"])
    method.load_state_dict(state["method"])
    method.load_models(path)
    if update is not None:
        update.load_state_dict(state["update"])
    set_rng_state(state["rng"])
    return state["step"]
