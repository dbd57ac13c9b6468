"""Weight sync, learner -> rollout engine, behind one interface with three transports.

- shared:    the engine samples from the learner's own module (HF engine, colocated): nothing moves.
- reload:    an in-process engine with weights of its own (vLLM colocated) loads them bucket by bucket.
- broadcast: a separate worker process receives them over a torch.distributed group (NCCL on GPUs,
             gloo on the CPU): the names, shapes and dtypes once, then one flat buffer per bucket.

Weights come from `learner.named_weights()`: whole tensors (a ZeRO-3 learner gathers them), LoRA
merged, under the base model's names. Buckets bound both the memory a sync holds at once and the
number of calls (never one per parameter). Every sync reports its seconds and bytes; a transfer
that fails or outlasts `sync.timeout_s` raises naming the parameter it was on.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from datetime import timedelta
from typing import Iterable, Iterator

import torch

from rlpretrain.registry import Registry
from rlpretrain.rollout.base import SyncStats

WeightBucket = list[tuple[str, torch.Tensor]]
WEIGHT_TRANSPORTS: Registry = Registry("weight transport")


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

def _flat(bucket: WeightBucket, device) -> torch.Tensor:
    """One byte buffer for a bucket of mixed dtypes: a single broadcast call."""
    return torch.cat([t.detach().contiguous().view(-1).view(torch.uint8) for _, t in bucket]).to(device)


def _unflat(flat: torch.Tensor, meta: list[tuple[str, tuple, torch.dtype]]) -> WeightBucket:
    out, offset = [], 0
    for name, shape, dtype in meta:
        n = int(torch.Size(shape).numel()) * torch.empty((), dtype=dtype).element_size()
        out.append((name, flat[offset:offset + n].view(dtype).view(shape).clone()))
        offset += n
    return out


def _wait(work, timeout_s: float, name: str) -> None:
    try:
        ok = work.wait(timedelta(seconds=timeout_s))
    except Exception as e:  # gloo raises on timeout or a peer that went away
        raise WeightSyncError(f"weight sync failed at parameter '{name}': {e}") from e
    if ok is False:
        raise WeightSyncError(f"weight sync timed out after {timeout_s} s at parameter '{name}'")


def send_weights(named: Iterable[tuple[str, torch.Tensor]], group, src: int, bucket_bytes_: int,
                 timeout_s: float, device="cpu") -> SyncStats:
    """Rank `src` of `group`, per bucket: its layout (one object), then its flat buffer; an empty
    layout ends the sync. Buckets are made as they are sent, so a ZeRO-3 learner gathers only one at a time."""
    import torch.distributed as dist

    started, sent, name = time.perf_counter(), 0, "(end of sync)"
    try:
        for bucket in iter_buckets(named, bucket_bytes_):
            name = bucket[0][0]
            dist.broadcast_object_list([[(n, tuple(t.shape), t.dtype) for n, t in bucket]], src=src, group=group)
            flat = _flat(bucket, device)
            _wait(dist.broadcast(flat, src=src, group=group, async_op=True), timeout_s, name)
            sent += flat.numel()
        name = "(end of sync)"
        dist.broadcast_object_list([[]], src=src, group=group)
    except WeightSyncError:
        raise
    except Exception as e:  # the group's own timeout (set when it was made) or a lost peer
        raise WeightSyncError(f"weight sync failed at parameter '{name}': {e}") from e
    return SyncStats(seconds=time.perf_counter() - started, bytes=sent)


def receive_weights(group, src: int, timeout_s: float, device="cpu") -> Iterator[WeightBucket]:
    """The other ranks of `group`: buckets as they arrive, ready for `engine.load_weights`."""
    import torch.distributed as dist

    while True:
        holder = [None]
        dist.broadcast_object_list(holder, src=src, group=group)
        meta = holder[0]
        if not meta:
            return
        size = sum(int(torch.Size(s).numel()) * torch.empty((), dtype=d).element_size() for _, s, d in meta)
        flat = torch.empty(size, dtype=torch.uint8, device=device)
        _wait(dist.broadcast(flat, src=src, group=group, async_op=True), timeout_s, meta[0][0])
        yield _unflat(flat, meta)


@WEIGHT_TRANSPORTS.register("broadcast")
class Broadcast(WeightTransport):
    """The engine is a proxy for separate workers (rlpretrain/launch/): it starts their receive,
    this side sends, then the workers confirm they loaded."""

    def sync(self, learner, engine) -> SyncStats:
        pending = engine.begin_receive(self.cfg.timeout_s)
        stats = send_weights(learner.named_weights(), engine.sync_group, 0, self.bucket_bytes, self.cfg.timeout_s,
                             device=engine.sync_device)
        engine.finish_receive(pending)
        return stats


def resolve_transport(cfg_sync, engine, learner) -> WeightTransport:
    """`auto`: shared when the engine samples from the learner's module, broadcast for separate
    workers, reload otherwise."""
    name = cfg_sync.transport
    if name == "auto":
        if getattr(engine, "module", None) is learner.module:
            name = "shared"
        elif getattr(engine, "sync_group", None) is not None:
            name = "broadcast"
        else:
            name = "reload"
    return WEIGHT_TRANSPORTS.get(name)(cfg_sync)
