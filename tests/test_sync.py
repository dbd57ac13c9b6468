"""Weight sync (rlpretrain/rollout/sync.py): buckets, the in-process reload, and the broadcast
between two real processes over gloo (and NCCL where two GPUs are), bit for bit, with a timeout
that names the parameter."""

from __future__ import annotations

import copy
import os
import time

import pytest
import torch
import torch.multiprocessing as mp
from omegaconf import OmegaConf
from transformers import LlamaConfig, LlamaForCausalLM

from rlpretrain.learner.config import LearnerConfig
from rlpretrain.rollout.config import RolloutConfig
from rlpretrain.learner.torch import TorchLearner
from rlpretrain.rollout.hf import HFEngine
from rlpretrain.rollout.sync import (SyncConfig, WeightSyncError, bucket_bytes, iter_buckets, receive_weights, resolve_sync_backend,
                                     resolve_transport, send_weights, sync_group)


def _model(seed=0):
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64))


def test_buckets_respect_the_size_and_keep_order():
    named = [(f"p{i}", torch.zeros(n)) for i, n in enumerate([10, 10, 30, 5, 100, 1])]  # float32: 4 bytes each
    buckets = list(iter_buckets(named, bucket_bytes=100))
    assert [[n for n, _ in b] for b in buckets] == [["p0", "p1"], ["p2"], ["p3"], ["p4"], ["p5"]]
    assert [bucket_bytes(b) for b in buckets] == [80, 120, 20, 400, 4]  # a tensor over the size goes alone
    assert [n for b in buckets for n, _ in b] == [n for n, _ in named]


def test_reload_copies_the_learner_weights_into_an_engine_of_its_own(small_model):
    tokenizer, model = small_model
    learner = TorchLearner(OmegaConf.structured(LearnerConfig()), copy.deepcopy(model), total_steps=1)
    engine = HFEngine(OmegaConf.structured(RolloutConfig()), copy.deepcopy(model), tokenizer)
    with torch.no_grad():
        for p in learner.module.parameters():
            p.add_(0.01)  # as an optimizer step would
    transport = resolve_transport(OmegaConf.structured(SyncConfig(bucket_mb=0.05)), engine, learner)
    assert type(transport).__name__ == "InProcessReload"
    stats = transport.sync(learner, engine)
    expected = learner.module.state_dict()
    unique = {t.data_ptr(): t for t in expected.values()}.values()  # tied weights are sent once
    assert stats.bytes == sum(t.numel() * t.element_size() for t in unique) < sum(
        t.numel() * t.element_size() for t in expected.values())
    assert all(torch.equal(engine.module.state_dict()[k], v) for k, v in expected.items())


def test_shared_transport_refuses_an_engine_with_its_own_weights(small_model):
    tokenizer, model = small_model
    learner = TorchLearner(OmegaConf.structured(LearnerConfig()), model, total_steps=1)
    colocated = HFEngine(OmegaConf.structured(RolloutConfig()), model, tokenizer)
    assert type(resolve_transport(OmegaConf.structured(SyncConfig()), colocated, learner)).__name__ == "SharedModule"
    separate = HFEngine(OmegaConf.structured(RolloutConfig()), copy.deepcopy(model), tokenizer)
    with pytest.raises(WeightSyncError, match="needs an engine that samples from the learner's own module"):
        resolve_transport(OmegaConf.structured(SyncConfig(transport="shared")), separate, learner).sync(learner, separate)


def test_loading_a_wrong_shape_names_the_parameter(small_model):
    tokenizer, model = small_model
    engine = HFEngine(OmegaConf.structured(RolloutConfig()), copy.deepcopy(model), tokenizer)
    with pytest.raises(WeightSyncError, match="cannot load parameter 'model.norm.weight' \\(3,\\)"):
        engine.load_weights([[("model.norm.weight", torch.zeros(3))]])


def _peer(rank, port, out, mode, backend):
    device = torch.device("cpu")
    if backend == "nccl":  # one GPU per rank
        torch.cuda.set_device(rank)
        device = torch.device("cuda", rank)
    group = sync_group("127.0.0.1", port, rank, 2, timeout_s=4, backend=backend)
    if rank == 0:
        model = _model(seed=1).to(device)
        try:
            stats = send_weights(model.state_dict().items(), group, bucket_bytes_=20_000, timeout_s=4)
            torch.save({"bytes": stats.bytes, "state": {k: v.cpu() for k, v in model.state_dict().items()}}, out + ".sent")
        except WeightSyncError as e:
            torch.save({"error": str(e)}, out + ".sent")
    elif mode == "receive":
        model, calls = _model(seed=2).to(device), 0
        for bucket in receive_weights(group, timeout_s=4):
            calls += 1
            assert all(t.device == device for _, t in bucket)
            with torch.no_grad():
                state = model.state_dict()
                for name, tensor in bucket:
                    state[name].copy_(tensor)
        torch.save({"state": {k: v.cpu() for k, v in model.state_dict().items()}, "calls": calls}, out + ".received")
    else:  # a worker that joins and never receives
        time.sleep(8)
        os._exit(0)


def _spawn(tmp_path, mode, backend="gloo"):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "w")
    mp.start_processes(_peer, args=(port, out, mode, backend), nprocs=2, join=True, start_method="spawn")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["gloo", pytest.param("nccl", marks=[pytest.mark.gpu, pytest.mark.skipif(
    torch.cuda.device_count() < 2, reason="NCCL needs two CUDA devices, one per rank")])])
def test_broadcast_between_two_processes_is_bit_exact(tmp_path, backend):
    out = _spawn(tmp_path, "receive", backend)
    sent, received = torch.load(out + ".sent"), torch.load(out + ".received")
    assert sent["state"].keys() == received["state"].keys()
    assert all(torch.equal(sent["state"][k], received["state"][k]) for k in sent["state"])
    assert sent["bytes"] == sum(t.numel() * t.element_size() for t in sent["state"].values())
    assert 1 < received["calls"] < len(sent["state"])  # bucketed: fewer transfers than tensors, more than one


@pytest.mark.slow
def test_a_worker_that_never_receives_raises_naming_the_parameter(tmp_path):
    started = time.monotonic()
    out = _spawn(tmp_path, "absent")
    error = torch.load(out + ".sent")["error"]
    assert "weight sync failed or timed out (4 s) at parameter 'model.embed_tokens.weight'" in error, error
    assert time.monotonic() - started < 60


def test_sync_backend_auto_picks_nccl_only_with_gpus_on_both_sides():
    assert resolve_sync_backend("auto", gpus_on_both_sides=True) == "nccl"
    assert resolve_sync_backend("auto", gpus_on_both_sides=False) == "gloo"
    assert resolve_sync_backend("gloo", gpus_on_both_sides=True) == "gloo"
    with pytest.raises(ValueError, match="sync.backend must be one of auto, gloo, nccl, got 'mpi'"):
        resolve_sync_backend("mpi", gpus_on_both_sides=False)


def test_a_bad_sync_backend_fails_before_training(small_model):
    tokenizer, model = small_model
    learner = TorchLearner(OmegaConf.structured(LearnerConfig()), model, total_steps=1)
    engine = HFEngine(OmegaConf.structured(RolloutConfig()), model, tokenizer)
    with pytest.raises(ValueError, match="sync.backend must be one of auto, gloo, nccl, got 'ncl'"):
        resolve_transport(OmegaConf.structured(SyncConfig(backend="ncl")), engine, learner)
    with pytest.raises(ValueError, match="sync.transport=broadcast sends weights to separate rollout workers: it needs launcher=ray"):
        resolve_transport(OmegaConf.structured(SyncConfig(transport="broadcast")), engine, learner)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_nccl_without_cuda_says_what_is_missing():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(WeightSyncError, match="sync.backend=nccl needs CUDA and NCCL on every member of the sync group; "
                                              "this process has CUDA unavailable"):
        sync_group("127.0.0.1", port, 0, 1, timeout_s=2, backend="nccl")
