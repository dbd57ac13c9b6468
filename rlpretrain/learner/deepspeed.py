"""DeepSpeed learner: ZeRO stages 1-3, optional CPU offload, bf16; the torch learner's contract.

The only module that imports deepspeed. It keeps the torch learner's numbers: the same AdamW
(a client optimizer, so no op is compiled unless offloading), the same LR schedules, the same
token-budget micro-batches and numerator/denominator losses. DeepSpeed runs with
`managed_gradient_accumulation: false`, so a step may have any number of micro-batches: each
`backward` accumulates and `step()` is the boundary (reduction, clipping, update).

Runs on the CPU too (DeepSpeed's CPU accelerator, gloo), which is how the tests check it. One
process needs no launcher: the rendezvous variables default to a single local rank.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from rlpretrain.learner.base import LEARNERS, Learner, Loss, TensorBatch
from rlpretrain.learner.efficiency import apply_efficiency_options
from rlpretrain.learner.microbatch import split_by_tokens
from rlpretrain.learner.schedules import optimizer_and_schedule
from rlpretrain.models.device import to_device
from rlpretrain.models.forward_options import forward_options

CHECKPOINT_TAG = "state"
GATHER_BYTES = 256 * 2 ** 20  # ZeRO-3 weight export: parameters gathered per group of about this size


def init_distributed() -> None:
    """A single local rank unless a launcher (torchrun, Ray) set the rendezvous already."""
    import deepspeed

    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1")):
        os.environ.setdefault(key, value)
    if "MASTER_PORT" not in os.environ:
        import socket
        with socket.socket() as s:  # a free port: two single-process runs on one machine must not collide
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])
    if not torch.distributed.is_initialized():
        deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")


def ds_config(cfg) -> dict:
    d = cfg.deepspeed
    if d.zero_stage not in (1, 2, 3):
        raise ValueError(f"learner.deepspeed.zero_stage must be 1, 2 or 3, got {d.zero_stage}")
    if d.offload_params and d.zero_stage != 3:
        raise ValueError("learner.deepspeed.offload_params needs zero_stage=3 (only stage 3 partitions parameters)")
    zero: dict = {"stage": d.zero_stage}
    if d.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    if d.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    return {
        "train_micro_batch_size_per_gpu": 1,  # rows per micro-batch vary (token budget); DeepSpeed only logs it
        "gradient_accumulation_steps": 1,
        "managed_gradient_accumulation": False,  # step() is the boundary, whatever the micro-batch count
        "gradient_clipping": cfg.grad_clip if cfg.grad_clip > 0 else 0.0,
        "bf16": {"enabled": cfg.precision == "bf16"},
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,  # keep torch's AdamW (identical numbers) when offloading too
        "steps_per_print": 2 ** 31 - 1,
        "wall_clock_breakdown": False,
    }


def _all_reduce_sum(value: float, device: torch.device, op=None) -> float:
    """Over the data-parallel ranks; `device` is the learner's (NCCL takes tensors on the rank's GPU only)."""
    t = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t, op=op or torch.distributed.ReduceOp.SUM)
    return float(t)


def _all_reduce_max(value: float, device: torch.device) -> float:
    return _all_reduce_sum(value, device, torch.distributed.ReduceOp.MAX)


@LEARNERS.register("deepspeed")
class DeepSpeedLearner(Learner):
    def __init__(self, cfg, module: torch.nn.Module, total_steps: int):
        try:
            import deepspeed
        except ImportError as e:
            raise ImportError("learner=deepspeed needs DeepSpeed: DS_BUILD_OPS=0 pip install -c constraints.txt "
                              "'rlpretrain[scale]'") from e
        if cfg.precision not in ("fp32", "bf16"):
            raise ValueError(f"learner.precision must be fp32 or bf16, got '{cfg.precision}'")
        init_distributed()
        apply_efficiency_options(cfg, module)  # before DeepSpeed wraps the module
        self.cfg = cfg
        self.version = 0
        params = [p for p in module.parameters() if p.requires_grad]
        optimizer, scheduler = optimizer_and_schedule(cfg, params, total_steps)
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=module, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config(cfg))
        self.module = self.engine.module

    @property
    def device(self) -> torch.device:
        """The engine's (its rank's accelerator): where the forward runs, even when ZeRO-3 offloads the
        parameters to the CPU between uses."""
        return torch.device(self.engine.device)

    @property
    def zero_stage(self) -> int:
        return self.engine.zero_optimization_stage()

    def gathered(self):
        """Full parameters inside (ZeRO-3 partitions them): for saving, the EMA copy, weight sync."""
        if self.zero_stage != 3:
            return contextlib.nullcontext()
        import deepspeed
        return deepspeed.zero.GatheredParameters(list(self.module.parameters()), modifier_rank=None)

    def named_weights(self):
        """ZeRO-3 gathers a group of parameters at a time (about GATHER_BYTES) and yields copies, so a
        sync never holds the whole model; other stages hold whole parameters already."""
        if self.zero_stage != 3:
            yield from super().named_weights()
            return
        import deepspeed

        params = list(self.module.named_parameters())
        group, size = [], 0
        for i, (name, p) in enumerate(params):
            group.append((name, p))
            size += p.ds_numel * p.element_size()
            if size >= GATHER_BYTES or i == len(params) - 1:
                with deepspeed.zero.GatheredParameters([q for _, q in group], modifier_rank=None):
                    chunk = [(n, q.data.detach().clone()) for n, q in group]
                yield from chunk
                group, size = [], 0

    def train_step(self, batch: TensorBatch, loss: Loss) -> dict[str, float]:
        self.engine.train()
        micro_batches = split_by_tokens(batch, self.cfg.max_tokens_per_micro_batch, self.cfg.micro_batch_min_fill,
                                        packed=forward_options(self.module).padding_free)
        if not micro_batches:
            raise ValueError(f"learner rank {torch.distributed.get_rank()} got no rows: give every rank a share")
        local = sum(loss.denominator(m) for m in micro_batches)
        # data parallel: each rank holds its share of the rows; the normaliser is the global one, and
        # DeepSpeed averages gradients over ranks, so each rank's loss is scaled up by the world size
        world = torch.distributed.get_world_size()
        total = _all_reduce_sum(local, self.device) if world > 1 else local
        # ZeRO-2/3 reduce gradients in every backward: all ranks must run as many, so a rank with
        # fewer micro-batches repeats its last one with weight 0
        rounds = int(_all_reduce_max(len(micro_batches), self.device)) if world > 1 else len(micro_batches)
        stats: dict[str, float] = {}
        if total > 0:
            for k in range(rounds):
                micro = micro_batches[min(k, len(micro_batches) - 1)]
                weight = 1.0 if k < len(micro_batches) else 0.0
                share = weight * loss.denominator(micro) / total
                numerator, micro_stats = loss.numerator(self.engine, to_device(micro, self.device))
                self.engine.backward(numerator * (weight * world / total), scale_wrt_gas=False)
                for key, value in micro_stats.items():
                    stats[key] = stats.get(key, 0.0) + share * float(value)
        if world > 1:  # the stats are weighted shares of the global batch: their sum over ranks
            stats = {key: _all_reduce_sum(value, self.device) for key, value in sorted(stats.items())}
        stats["lr"] = self.scheduler.get_last_lr()[0]
        self.engine.step()
        grad_norm = self.engine.get_global_grad_norm()
        stats["grad_norm"] = float(grad_norm) if grad_norm is not None else float("nan")
        self.engine.zero_grad()
        self.version += 1
        stats["micro_batches"] = len(micro_batches)
        return stats

    def export_model(self, directory: Path) -> None:
        with self.gathered():
            if torch.distributed.get_rank() == 0:
                self.module.save_pretrained(directory, safe_serialization=True)

    def save_checkpoint(self, directory: Path) -> dict:
        self.export_model(directory / "policy")
        # DeepSpeed's own files: fp32 master weights, optimizer partitions, scheduler; every rank writes its part
        self.engine.save_checkpoint(str(directory / "deepspeed"), tag=CHECKPOINT_TAG, save_latest=False)
        return {"version": self.version}

    def load_checkpoint(self, directory: Path, state: dict) -> None:
        path, _ = self.engine.load_checkpoint(str(directory / "deepspeed"), tag=CHECKPOINT_TAG,
                                              load_optimizer_states=True, load_lr_scheduler_states=True)
        if path is None:
            raise FileNotFoundError(f"no DeepSpeed checkpoint under {directory / 'deepspeed'}")
        self.version = state["version"]

    def state_dict(self) -> dict:
        return {"version": self.version}

    def load_state_dict(self, state: dict) -> None:
        self.version = state["version"]
