"""launcher=ray: learner ranks and rollout workers as Ray actors, on one machine or a cluster.

    driver ──► learner rank 0 actor: runs the job's body (for RL: the loop, with method, rewards,
               update, checkpoints, logs), given a placer for its learner and engine
               ├─ learner ranks 1..N-1 actors: their share of each batch (DeepSpeed data parallel)
               └─ rollout worker actors: generate; take weights over the broadcast transport

The only module importing ray. Rank 0 scores on its own, so with several learner ranks the
weights must be whole on every rank (ZeRO stage 1 or 2). On a cluster, checkpoints and the run
directory must be on storage every learner node sees.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
from pathlib import Path

import torch
from omegaconf import OmegaConf

from rlpretrain.launch.local import build_engine, build_learner, record_placement
from rlpretrain.launch.placement import Placement
from rlpretrain.learner.base import Learner
from rlpretrain.rollout.base import RolloutEngine
from rlpretrain.rollout.sync import WEIGHT_TRANSPORTS, WeightSyncError, receive_weights, resolve_sync_backend, sync_group


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _checksums(named, names=None) -> dict[str, str]:
    out = {}
    for name, tensor in named:
        if names is None or name in names:
            out[name] = hashlib.sha256(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy()).hexdigest()
    return out


def gpu_share(requested: float | None, device: str, cluster_gpus: float, actors: int) -> float:
    """GPUs per actor: `requested` when set; else none for device=cpu, and otherwise an equal share of
    the cluster's GPUs over all learner ranks and rollout workers, at most one each (a rank uses one
    device). Ray hides the GPUs an actor was not given, so device=cuda in an actor with none fails clearly."""
    if requested is not None:
        return float(requested)
    if device == "cpu" or cluster_gpus <= 0:
        return 0.0
    return math.floor(min(1.0, cluster_gpus / actors) * 1e4) / 1e4  # Ray counts GPU fractions to 1e-4


def _load(cfg):
    from rlpretrain.models.loading import load_model_and_tokenizer, pick_device

    return load_model_and_tokenizer(cfg.model, pick_device(cfg.device))


class LearnerRank:
    """One learner rank. Rank 0 also runs the loop (`run`); the others follow its calls."""

    def __init__(self, cfg: dict, rank: int, world: int, master_addr: str, master_port: int):
        os.environ.update(RANK=str(rank), LOCAL_RANK="0", WORLD_SIZE=str(world), MASTER_ADDR=master_addr,
                          MASTER_PORT=str(master_port))
        self.cfg = OmegaConf.create(cfg)
        self.learner = None

    def node_ip(self) -> str:
        import ray
        return ray.util.get_node_ip_address()

    def setup(self) -> None:  # followers; rank 0 builds its learner inside the loop
        from rlpretrain.learner.lora import apply_lora

        _, policy = _load(self.cfg)
        self.learner = build_learner(self.cfg, apply_lora(policy, self.cfg.learner.lora), self.cfg.trainer.max_steps)

    def train_step(self, batch, loss):
        return self.learner.train_step(batch, loss)

    def save_checkpoint(self, directory: str) -> None:
        self.learner.save_checkpoint(Path(directory))

    def load_checkpoint(self, directory: str, state: dict) -> None:
        self.learner.load_checkpoint(Path(directory), state)

    def pid(self) -> int:
        return os.getpid()

    def run(self, body, followers, workers, sync_port: int, sync_backend: str):
        """The job's body, here: `body(cfg, placer)`; the placer hands it this rank's learner
        (driving the followers) and an engine over the workers."""
        return body(self.cfg, RayPlacer(followers, workers, sync_port, sync_backend))


class RayPlacer:
    """A job's learner and engine on Ray: the learner in this actor (rank 0, driving the other
    ranks), the engine a proxy for the rollout-worker actors, weights over a broadcast group."""

    name = "ray"

    def __init__(self, followers, workers, sync_port: int, sync_backend: str):
        self.followers, self.workers = followers, workers
        self.sync_port, self.sync_backend = sync_port, sync_backend

    def _describe(self, learner: bool, engine: bool) -> dict:
        import ray

        out: dict = {"launcher": self.name}
        if learner:
            out["learner"] = {"pid": os.getpid(), "ray_actor": True, "ranks": 1 + len(self.followers)}
        if engine:
            out["engine"] = {"ray_actor": True, "workers": len(self.workers),
                             "pids": ray.get([w.pid.remote() for w in self.workers])}
        return out

    def learner(self, cfg, model, total_steps: int, run_dir) -> Learner:
        learner = build_learner(cfg, model, total_steps)
        record_placement(run_dir, self._describe(learner=True, engine=False))
        return DataParallelLearner(learner, self.followers) if self.followers else learner

    def engine(self, cfg, model, tokenizer, run_dir, verify_with: Learner | None = None) -> "RemoteEngine":
        if not self.workers:
            raise ValueError("this job runs no rollout workers (launcher.num_rollout_workers is 0 for it)")
        group = sync_group("127.0.0.1", self.sync_port, 0, 1 + len(self.workers), cfg.sync.timeout_s,  # hosts the store
                           self.sync_backend)
        record_placement(run_dir, self._describe(learner=False, engine=True))
        return RemoteEngine(self.workers, group, verify_with, Path(run_dir) / "sync_checks.jsonl")

    def place(self, cfg, policy, tokenizer) -> Placement:
        if cfg.sync.transport not in ("auto", "broadcast"):
            raise ValueError(f"sync.transport={cfg.sync.transport}: launcher=ray sends weights to its rollout "
                             "workers by broadcast; leave sync.transport at auto")
        learner = self.learner(cfg, policy, cfg.trainer.max_steps, cfg.run_dir)
        engine = self.engine(cfg, None, tokenizer, cfg.run_dir, learner if cfg.launcher.verify_sync else None)
        return Placement(learner, engine, WEIGHT_TRANSPORTS.get("broadcast")(cfg.sync))


class DataParallelLearner(Learner):
    """Rank 0's learner, driving the other ranks: each step, rank r trains on the r-th contiguous
    share of the rows (so a prompt's samples mostly stay on one rank); checkpoints on every rank."""

    def __init__(self, local: Learner, followers):
        self.local, self.followers = local, followers
        self.module, self.cfg = local.module, local.cfg

    @property
    def version(self) -> int:
        return self.local.version

    def train_step(self, batch, loss):
        import ray

        shares = torch.tensor_split(torch.arange(len(batch["input_ids"])), 1 + len(self.followers))
        pending = [f.train_step.remote({k: v[shares[r]] for k, v in batch.items()}, loss)
                   for r, f in enumerate(self.followers, start=1)]
        stats = self.local.train_step({k: v[shares[0]] for k, v in batch.items()}, loss)
        ray.get(pending)
        return stats

    def save_checkpoint(self, directory: Path) -> dict:
        import ray

        pending = [f.save_checkpoint.remote(str(directory)) for f in self.followers]
        state = self.local.save_checkpoint(directory)
        ray.get(pending)
        return state

    def load_checkpoint(self, directory: Path, state: dict) -> None:
        import ray

        pending = [f.load_checkpoint.remote(str(directory), state) for f in self.followers]
        self.local.load_checkpoint(directory, state)
        ray.get(pending)

    def gathered(self):
        return self.local.gathered()

    def named_weights(self):
        return self.local.named_weights()

    def export_model(self, directory: Path) -> None:
        self.local.export_model(directory)

    def state_dict(self) -> dict:
        return self.local.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.local.load_state_dict(state)


class RolloutWorker:
    """A rollout engine with weights of its own, in its own process."""

    def __init__(self, cfg: dict):
        from rlpretrain.seeding import seed_everything

        self.cfg = OmegaConf.create(cfg)
        seed_everything(self.cfg.seed)
        tokenizer, model = _load(self.cfg)
        self.engine = build_engine(self.cfg, model, tokenizer)
        self.group = None

    def pid(self) -> int:
        return os.getpid()

    def join(self, host: str, port: int, rank: int, size: int, backend: str) -> None:
        self.group = sync_group(host, port, rank, size, self.cfg.sync.timeout_s, backend)

    def scores_suffixes(self) -> bool:
        return self.engine.scores_suffixes

    def generate(self, prompts, params):
        return self.engine.generate(prompts, params)

    def receive(self, timeout_s: float) -> None:
        self.engine.load_weights(receive_weights(self.group, timeout_s))

    def checksums(self, names: list[str]) -> dict[str, str]:
        if not hasattr(self.engine, "module"):
            raise WeightSyncError("launcher.verify_sync reads the worker's weights: it needs rollout=hf workers")
        return _checksums(self.engine.module.state_dict().items(), set(names))


class RemoteEngine(RolloutEngine):
    """Rank 0's view of the workers: prompts are split between them; weights go by broadcast."""

    def __init__(self, workers, group, verify_with: Learner | None = None, checks_path: Path | None = None):
        import ray

        self.workers, self.sync_group = workers, group
        self.verify_with, self.checks_path = verify_with, checks_path
        self.scores_suffixes = all(ray.get([w.scores_suffixes.remote() for w in workers]))

    def generate(self, prompts, params):
        import dataclasses

        import ray

        self.check_params(params, len(prompts))
        shares = [s.tolist() for s in torch.tensor_split(torch.arange(len(prompts)), len(self.workers))]

        def part(share):  # a worker's share of the prompts, and of their suffixes
            if params.suffix_ids is None:
                return params
            return dataclasses.replace(params, suffix_ids=[params.suffix_ids[i] for i in share])

        results = ray.get([w.generate.remote([prompts[i] for i in share], part(share))
                           for w, share in zip(self.workers, shares)])
        return [samples for part in results for samples in part]

    def begin_receive(self, timeout_s: float):
        return [w.receive.remote(timeout_s) for w in self.workers]

    def finish_receive(self, pending) -> None:
        import ray

        ray.get(pending)
        if self.verify_with is not None:
            expected = _checksums(self.verify_with.named_weights())
            for k, got in enumerate(ray.get([w.checksums.remote(list(expected)) for w in self.workers])):
                wrong = [n for n in expected if got.get(n) != expected[n]]
                if wrong:
                    raise WeightSyncError(f"rollout worker {k} holds other weights than the learner after a sync: {wrong[:3]}")
            with open(self.checks_path, "a") as f:
                f.write(json.dumps({"version": self.verify_with.version, "workers": len(self.workers),
                                    "tensors": len(expected), "equal": True}) + "\n")


def run_on_ray(cfg, body, rollout_workers: bool = True):
    """Run `body(cfg, placer)` in learner rank 0's actor, beside the other learner ranks and, when the
    job generates (`rollout_workers`), the rollout workers. `body` must be importable by name (Ray
    pickles it by reference). Returns what it returns."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # or Ray writes a token under the home directory
    import ray

    L = cfg.launcher
    if L.num_learners > 1 and cfg.learner.name != "deepspeed":
        raise ValueError("launcher.num_learners > 1 needs learner=deepspeed (the torch learner has one rank)")
    if L.num_learners > 1 and cfg.learner.deepspeed.zero_stage == 3:
        raise ValueError("launcher=ray with several learner ranks needs learner.deepspeed.zero_stage 1 or 2: "
                         "rank 0 scores rewards on its own, so it needs whole weights")
    if rollout_workers and L.num_rollout_workers < 1:
        raise ValueError("launcher.num_rollout_workers must be at least 1")
    plain = OmegaConf.to_container(cfg, resolve=True)
    num_workers = L.num_rollout_workers if rollout_workers else 0
    needed = L.num_learners * L.learner_cpus + num_workers * L.worker_cpus
    ray.init(address=L.address, num_cpus=None if L.address else max(os.cpu_count() or 1, needed),
             include_dashboard=False, log_to_driver=True)
    try:
        gpus = ray.cluster_resources().get("GPU", 0.0)
        actors = L.num_learners + num_workers
        learner_gpus = gpu_share(L.learner_gpus, cfg.device, gpus, actors)
        worker_gpus = gpu_share(L.worker_gpus, cfg.device, gpus, actors)
        learner_actor = ray.remote(LearnerRank).options(num_cpus=L.learner_cpus, num_gpus=learner_gpus)
        worker_actor = ray.remote(RolloutWorker).options(num_cpus=L.worker_cpus, num_gpus=worker_gpus)
        master_port, sync_port = _free_port(), _free_port()
        # NCCL refuses two ranks on one GPU: actors holding fractions may share one, so auto needs whole GPUs
        sync_backend = resolve_sync_backend(cfg.sync.backend, min(learner_gpus, worker_gpus) >= 1)
        rank0 = learner_actor.remote(plain, 0, L.num_learners, "127.0.0.1", master_port)
        host = ray.get(rank0.node_ip.remote())
        followers = [learner_actor.remote(plain, r, L.num_learners, host, master_port)
                     for r in range(1, L.num_learners)]
        workers = [worker_actor.remote(plain) for _ in range(num_workers)]
        # joins complete once rank 0 joins; setups rendezvous with rank 0's learner, built inside its loop
        side = [w.join.remote(host, sync_port, 1 + k, 1 + len(workers), sync_backend) for k, w in enumerate(workers)]
        side += [f.setup.remote() for f in followers]
        run = rank0.run.remote(body, followers, workers, sync_port, sync_backend)
        while True:  # a follower or worker that fails must stop the run, not leave rank 0 waiting
            ready, _ = ray.wait([run, *side], num_returns=1)
            ray.get(ready[0])  # raises that actor's error
            if ready[0] == run:
                return ray.get(run)
            side.remove(ready[0])
    finally:
        ray.shutdown()
