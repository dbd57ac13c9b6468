"""Weight-sync cost per transport and bucket size, and its share of a real step.

For the embedded tiny model and a randomly initialised Llama of about 0.5B parameters (CPU,
float32): the `reload` transport into an HF engine with weights of its own (in process), and the
`broadcast` transport to a second process over gloo, or NCCL between two GPUs with `--backend nccl`
(what a separate rollout worker gets). The
`shared` transport moves nothing (0 bytes; the engine samples from the learner's module). Then a
few quickstart steps with a separate worker on Ray, for the share of step time spent in sync.

    python benchmarks/bench_weight_sync.py [--buckets 1 16 64 256] [--repeats 3] [--skip-large] [--backend nccl]
"""

from __future__ import annotations

import argparse
import copy
import socket
import statistics
import tempfile

import torch
import torch.multiprocessing as mp
from omegaconf import OmegaConf
from transformers import LlamaConfig, LlamaForCausalLM


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _large_model():
    """~0.5B parameters, Qwen2.5-0.5B's shape (hidden 896, 24 layers, vocab 151936, tied embeddings)."""
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                                        num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                                        tie_word_embeddings=True))


class _Learner:
    """What a learner exports, without an optimizer (0.5B of Adam state would not change the sync)."""

    def __init__(self, module):
        self.module = module

    def named_weights(self):
        from rlpretrain.learner.base import Learner
        return Learner.named_weights(self)

    def gathered(self):
        import contextlib
        return contextlib.nullcontext()


def _device(backend: str, rank: int) -> torch.device:
    if backend == "nccl":  # NCCL needs one GPU per rank
        torch.cuda.set_device(rank)
        return torch.device("cuda", rank)
    return torch.device("cpu")


def _receiver(rank, port, config, buckets, repeats, backend):
    from rlpretrain.rollout.sync import receive_weights, sync_group

    torch.set_num_threads(1)
    model = LlamaForCausalLM(config).to(_device(backend, 1))
    state = model.state_dict()
    group = sync_group("127.0.0.1", port, 1, 2, timeout_s=600, backend=backend)
    for _ in range(len(buckets) * repeats):
        with torch.no_grad():
            for bucket in receive_weights(group, timeout_s=600):
                for name, tensor in bucket:
                    state[name].copy_(tensor)


def bench_model(label, model, buckets, repeats, backend):
    from rlpretrain.rollout.config import RolloutConfig
    from rlpretrain.rollout.sync import SyncConfig
    from rlpretrain.rollout.hf import HFEngine
    from rlpretrain.rollout.sync import WEIGHT_TRANSPORTS, send_weights, sync_group

    learner = _Learner(model)
    n_params = sum(p.numel() for p in model.parameters())
    rows = []
    engine = HFEngine(OmegaConf.structured(RolloutConfig()), copy.deepcopy(model), tokenizer=_NoPad())
    for mb in buckets:
        transport = WEIGHT_TRANSPORTS.get("reload")(OmegaConf.structured(SyncConfig(bucket_mb=mb)))
        stats = [transport.sync(learner, engine) for _ in range(repeats)]
        rows.append((label, n_params, "reload", mb, stats))
    del engine
    port = _port()
    proc = mp.get_context("spawn").Process(target=_receiver, args=(0, port, model.config, buckets, repeats, backend))
    proc.start()
    learner.module = model.to(_device(backend, 0))
    group = sync_group("127.0.0.1", port, 0, 2, timeout_s=600, backend=backend)
    for mb in buckets:
        stats = [send_weights(learner.named_weights(), group, int(mb * 2 ** 20), timeout_s=600) for _ in range(repeats)]
        rows.append((label, n_params, f"bcast/{backend}", mb, stats))
    learner.module = model.cpu()
    proc.join()
    return rows


class _NoPad:
    pad_token_id = 0
    eos_token_id = 0


def step_share(steps: int) -> None:
    """The share of step time spent in sync: quickstart steps with a separate worker on Ray."""
    from hydra import compose, initialize_config_dir

    from rlpretrain.cli import CONF_DIR
    from rlpretrain.config import register_configs
    from rlpretrain.jobs import run
    from rlpretrain.tracking import read_metrics

    register_configs()
    with tempfile.TemporaryDirectory() as tmp, initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["launcher=ray", "launcher.learner_cpus=0.5", "launcher.worker_cpus=0.5",
                                           f"trainer.max_steps={steps}", f"run_dir={tmp}", "tracking.progress=false",
                                           "tracking.tensorboard=false", "checkpoint.every=0"])
        run(cfg)
        timings = read_metrics(tmp, "timings.jsonl")[1:]  # the first step warms up
    sync = statistics.median(t["time/sync"] for t in timings)
    step = statistics.median(t["time/step"] for t in timings)
    print(f"\nquickstart on Ray (1 learner, 1 separate HF worker, broadcast, {len(timings)} steps after 1 warm-up): "
          f"sync {sync * 1000:.1f} ms of a {step * 1000:.0f} ms step = {100 * sync / step:.1f}% "
          f"({timings[0]['sync_bytes'] / 2 ** 20:.2f} MiB per sync)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buckets", type=float, nargs="+", default=[1, 16, 64, 256], help="bucket sizes, MiB")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-large", action="store_true", help="only the tiny model")
    parser.add_argument("--steps", type=int, default=6, help="quickstart steps for the step share")
    parser.add_argument("--backend", choices=["gloo", "nccl"], default="gloo",
                        help="broadcast group: gloo through host memory, or NCCL between GPUs 0 and 1")
    args = parser.parse_args()
    if args.backend == "nccl" and torch.cuda.device_count() < 2:
        parser.error(f"--backend nccl needs two CUDA devices (one per rank); this machine has {torch.cuda.device_count()}")

    from rlpretrain.models.loading import load_model_and_tokenizer
    from rlpretrain.models.loading import ModelConfig

    _, tiny = load_model_and_tokenizer(OmegaConf.structured(ModelConfig()), torch.device("cpu"))
    models = [("tiny (embedded)", tiny)] + ([] if args.skip_large else [("~0.5B random", _large_model())])
    rows = []
    for label, model in models:
        rows += bench_model(label, model, args.buckets, args.repeats, args.backend)
    print(f"{'model':<16} {'params':>8} {'transport':<10} {'bucket MiB':>10} {'MiB moved':>10} {'median s':>9} {'MiB/s':>9}")
    for label, n, transport, mb, stats in rows:
        seconds = statistics.median(s.seconds for s in stats)
        moved = stats[0].bytes / 2 ** 20
        print(f"{label:<16} {n / 1e6:>7.1f}M {transport:<10} {mb:>10g} {moved:>10.1f} {seconds:>9.3f} "
              f"{moved / seconds:>9.0f}")
    print("shared     : 0 bytes, 0 s (the engine samples from the learner's own module)")
    step_share(args.steps)


if __name__ == "__main__":
    main()
