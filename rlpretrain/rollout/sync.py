"""Weight sync, learner -> rollout engine, behind one interface with three transports.

- shared:    the engine samples from the learner's own module (HF engine, colocated): nothing moves.
- reload:    an in-process engine with weights of its own (vLLM colocated) loads them bucket by bucket.
- broadcast: separate worker processes receive them over a group of their own with learner
             rank 0: per bucket its layout (gloo, host memory), then one flat buffer, over gloo
             through host memory or, with `sync.backend=nccl`, over NCCL from GPU to GPU.

Weights come from `learner.named_weights()`: whole tensors (a ZeRO-3 learner gathers them), LoRA
merged, under the base model's names. Buckets bound both the memory a sync holds at once and the
number of calls (never one per parameter). Every sync reports its seconds and bytes; a transfer
that fails or outlasts `sync.timeout_s` raises naming the parameter it was on.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable, Iterator

import torch

from rlpretrain.checks import require
from rlpretrain.registry import Registry
from rlpretrain.rollout.base import SyncStats

WeightBucket = list[tuple[str, torch.Tensor]]
WEIGHT_TRANSPORTS: Registry = Registry("weight transport")


@dataclass
class SyncConfig:
    """The `sync` group: weight sync learner -> rollout engine."""
    transport: str = "auto"  # auto | shared | reload | broadcast
    bucket_mb: float = 256.0  # tensors per transfer, at most this many MiB (one call per bucket)
    timeout_s: float = 600.0  # a transfer that takes longer raises, naming the parameter
    backend: str = "auto"  # broadcast: auto (nccl when learner and workers hold whole GPUs) | gloo | nccl

    def __post_init__(self):
        require(self.bucket_mb > 0, "bucket_mb", "> 0", self.bucket_mb)
        require(self.timeout_s > 0, "timeout_s", "> 0", self.timeout_s)


class WeightSyncError(RuntimeError):
    pass


def iter_buckets(named: Iterable[tuple[str, torch.Tensor]], bucket_bytes: int) -> Iterator[WeightBucket]:
    """Consecutive tensors, at most `bucket_bytes` per bucket; a larger tensor forms its own bucket."""
    bucket, size = [], 0
    for name, tensor in named:
        nbytes = tensor.numel() * tensor.element_size()
        if bucket and size + nbytes > bucket_bytes:
            yield bucket
            bucket, size = [], 0
        bucket.append((name, tensor))
        size += nbytes
    if bucket:
        yield bucket


def bucket_bytes(bucket: WeightBucket) -> int:
    return sum(t.numel() * t.element_size() for _, t in bucket)


class WeightTransport(ABC):
    def __init__(self, cfg):
        self.cfg = cfg
        self.bucket_bytes = int(cfg.bucket_mb * 2 ** 20)

    @abstractmethod
    def sync(self, learner, engine) -> SyncStats:
        """Make `engine` generate with `learner`'s current weights."""


@WEIGHT_TRANSPORTS.register("shared")
class SharedModule(WeightTransport):
    def sync(self, learner, engine) -> SyncStats:
        if getattr(engine, "module", None) is not learner.module:
            raise WeightSyncError("sync.transport=shared needs an engine that samples from the learner's own module "
                                  f"(rollout=hf, colocated); {type(engine).__name__} has weights of its own")
        return SyncStats()


@WEIGHT_TRANSPORTS.register("reload")
class InProcessReload(WeightTransport):
    def sync(self, learner, engine) -> SyncStats:
        started, sent = time.perf_counter(), 0

        def counted():
            nonlocal sent
            for bucket in iter_buckets(learner.named_weights(), self.bucket_bytes):
                sent += bucket_bytes(bucket)
                yield bucket

        engine.load_weights(counted())
        return SyncStats(seconds=time.perf_counter() - started, bytes=sent)


# --- broadcast: learner rank 0 -> separate workers ------------------------------------------
# A group of its own (learner rank 0 is rank 0, workers follow), beside any group the learner's
# ranks already share (DeepSpeed's world): made from a TCP store, used through its own methods.

SYNC_BACKENDS = ("auto", "gloo", "nccl")


@dataclass
class SyncGroup:
    """Layouts go over `control` (gloo: small pickled lists in host memory); bucket bytes over
    `data`, from and into buffers on `device`: the same gloo group on the CPU, or NCCL GPU to GPU."""
    control: object
    data: object
    device: torch.device


def resolve_sync_backend(name: str, gpus_on_both_sides: bool) -> str:
    """`auto`: NCCL when the learner and the workers hold GPUs, gloo otherwise."""
    if name not in SYNC_BACKENDS:
        raise ValueError(f"sync.backend must be one of {', '.join(SYNC_BACKENDS)}, got '{name}'")
    if name == "auto":
        return "nccl" if gpus_on_both_sides else "gloo"
    return name


def sync_group(host: str, port: int, rank: int, size: int, timeout_s: float, backend: str = "gloo") -> SyncGroup:
    """A group of `size` processes; rank 0 hosts the store. Every member calls this, with the same
    backend. With NCCL each member sends from or receives into its current CUDA device."""
    import torch.distributed as dist

    if backend not in ("gloo", "nccl"):
        raise ValueError(f"sync group backend must be gloo or nccl (resolve 'auto' first), got '{backend}'")
    if backend == "nccl" and not (torch.cuda.is_available() and dist.is_nccl_available()):
        raise WeightSyncError("sync.backend=nccl needs CUDA and NCCL on every member of the sync group; this process "
                              f"has CUDA {'available' if torch.cuda.is_available() else 'unavailable'} and NCCL "
                              f"{'available' if dist.is_nccl_available() else 'unavailable'} (use sync.backend=gloo)")
    timeout = timedelta(seconds=timeout_s)
    store = dist.TCPStore(host, port, world_size=size, is_master=rank == 0, timeout=timeout)
    control = dist.ProcessGroupGloo(dist.PrefixStore("control", store), rank, size, timeout)
    if backend == "gloo":
        return SyncGroup(control, control, torch.device("cpu"))
    options = dist.ProcessGroupNCCL.Options()
    options._timeout = timeout
    data = dist.ProcessGroupNCCL(dist.PrefixStore("data", store), rank, size, options)
    return SyncGroup(control, data, torch.device("cuda", torch.cuda.current_device()))


def _broadcast(group, tensor: torch.Tensor, src: int, timeout_s: float, name: str) -> None:
    import torch.distributed as dist

    opts = dist.BroadcastOptions()
    opts.rootRank, opts.rootTensor, opts.timeout = src, 0, timedelta(seconds=timeout_s)
    try:
        work = group.broadcast([tensor], opts)
        work.wait()
    except Exception as e:  # gloo raises on timeout or on a peer that went away; NCCL's watchdog on timeout
        raise WeightSyncError(f"weight sync failed or timed out ({timeout_s} s) at parameter '{name}': {e}") from e


def _broadcast_layout(group: SyncGroup, layout, src: int, timeout_s: float, name: str):
    """A bucket's layout as pickled bytes: its length, then the bytes."""
    import pickle

    data = torch.frombuffer(bytearray(pickle.dumps(layout)), dtype=torch.uint8) if layout is not None else None
    length = torch.tensor([len(data) if data is not None else 0], dtype=torch.long)
    _broadcast(group.control, length, src, timeout_s, name)
    if data is None:
        data = torch.empty(int(length), dtype=torch.uint8)
    _broadcast(group.control, data, src, timeout_s, name)
    return pickle.loads(data.numpy().tobytes())


def _flat(bucket: WeightBucket, device: torch.device) -> torch.Tensor:
    """One byte buffer for a bucket of mixed dtypes: a single broadcast call."""
    return torch.cat([t.detach().to(device).contiguous().view(-1).view(torch.uint8) for _, t in bucket])


def _unflat(flat: torch.Tensor, meta: list[tuple[str, tuple, torch.dtype]]) -> WeightBucket:
    out, offset = [], 0
    for name, shape, dtype in meta:
        n = int(torch.Size(shape).numel()) * torch.empty((), dtype=dtype).element_size()
        out.append((name, flat[offset:offset + n].view(dtype).view(shape).clone()))
        offset += n
    return out


def send_weights(named: Iterable[tuple[str, torch.Tensor]], group: SyncGroup, bucket_bytes_: int,
                 timeout_s: float) -> SyncStats:
    """Rank 0 of `group`, per bucket: its layout, then its flat buffer; an empty layout ends the
    sync. Buckets are made as they are sent, so a ZeRO-3 learner gathers only a group at a time."""
    started, sent = time.perf_counter(), 0
    for bucket in iter_buckets(named, bucket_bytes_):
        name = bucket[0][0]
        _broadcast_layout(group, [(n, tuple(t.shape), t.dtype) for n, t in bucket], 0, timeout_s, name)
        flat = _flat(bucket, group.device)
        _broadcast(group.data, flat, 0, timeout_s, name)
        sent += flat.numel()
    _broadcast_layout(group, [], 0, timeout_s, "(end of sync)")
    if group.device.type == "cuda":
        torch.cuda.synchronize(group.device)  # the seconds include the transfer, not just its launch
    return SyncStats(seconds=time.perf_counter() - started, bytes=sent)


def receive_weights(group: SyncGroup, timeout_s: float) -> Iterator[WeightBucket]:
    """The other ranks of `group`: buckets as they arrive (on the group's device), ready for
    `engine.load_weights`."""
    while True:
        meta = _broadcast_layout(group, None, 0, timeout_s, "(bucket layout)")
        if not meta:
            return
        size = sum(int(torch.Size(s).numel()) * torch.empty((), dtype=d).element_size() for _, s, d in meta)
        flat = torch.empty(size, dtype=torch.uint8, device=group.device)
        _broadcast(group.data, flat, 0, timeout_s, meta[0][0])
        yield _unflat(flat, meta)


@WEIGHT_TRANSPORTS.register("broadcast")
class Broadcast(WeightTransport):
    """The engine is a proxy for separate workers (rlpretrain/launch/): it starts their receive,
    this side sends, then the workers confirm they loaded."""

    def sync(self, learner, engine) -> SyncStats:
        pending = engine.begin_receive(self.cfg.timeout_s)
        stats = send_weights(learner.named_weights(), engine.sync_group, self.bucket_bytes, self.cfg.timeout_s)
        engine.finish_receive(pending)
        return stats


def resolve_transport(cfg_sync, engine, learner) -> WeightTransport:
    """For an engine in the learner's process (launcher=local). `auto`: shared when the engine
    samples from the learner's module, reload otherwise. (launcher=ray places `broadcast` itself.)"""
    resolve_sync_backend(cfg_sync.backend, gpus_on_both_sides=False)  # a typo fails before training
    name = cfg_sync.transport
    if name == "broadcast":
        raise ValueError("sync.transport=broadcast sends weights to separate rollout workers: it needs launcher=ray")
    if name == "auto":
        name = "shared" if getattr(engine, "module", None) is learner.module else "reload"
    return WEIGHT_TRANSPORTS.get(name)(cfg_sync)
