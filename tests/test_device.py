"""Device correctness on the CPU: the helper, and consumers that move CPU-built inputs to their module.

No second real device exists here, so the module under test lives on torch's `meta` device (shapes,
no data). A consumer that moves its inputs runs the real model's forward on meta tensors, which a
forward hook records, and stops only where a result must leave meta (it has no data to copy out).
Before the fix the same calls failed at the embedding with a CPU-vs-meta device mismatch, the
error the issue saw on CUDA.
"""

import copy
from types import SimpleNamespace

import pytest
import torch

from rlpretrain.models.device import module_device, to_device

MISMATCH = "Expected all tensors to be on the same device"


def test_to_device_moves_nested_tensors_and_leaves_the_rest():
    inner = {"mask": torch.ones(2, 3, dtype=torch.bool), "note": "keep", "n": 3}
    batch = {"input_ids": torch.arange(6).view(2, 3), "nested": inner, "none": None}
    moved = to_device(batch, "meta")
    assert moved["input_ids"].device.type == "meta" and moved["input_ids"].shape == (2, 3)
    assert moved["input_ids"].dtype == torch.long and moved["nested"]["mask"].dtype == torch.bool
    assert moved["nested"]["mask"].device.type == "meta"
    assert moved["nested"]["note"] == "keep" and moved["nested"]["n"] == 3 and moved["none"] is None
    assert batch["input_ids"].device.type == "cpu"  # the input is not modified in place
    same = to_device(batch, torch.device("cpu"))
    assert same["input_ids"] is batch["input_ids"]  # already there: no copy


def test_module_device_sees_through_a_peft_wrapper(small_model):
    from peft import LoraConfig, get_peft_model

    _, model = small_model
    on_meta = copy.deepcopy(model).to("meta")
    assert module_device(on_meta).type == "meta"
    wrapped = get_peft_model(on_meta, LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    assert module_device(wrapped).type == "meta"
    with pytest.raises(ValueError, match="has no parameters"):
        module_device(torch.nn.ReLU())


@pytest.fixture
def meta_model(small_model):
    """The small model on meta, and the devices of the input_ids its forward was given."""
    _, model = small_model
    module = copy.deepcopy(model).to("meta")
    seen = []
    module.register_forward_pre_hook(
        lambda mod, args, kwargs: seen.append((kwargs.get("input_ids", args[0] if args else None)).device.type),
        with_kwargs=True)
    return module, seen


def _runs_on_meta(call, seen):
    """`call` ran the model on meta inputs and failed only where data had to leave meta."""
    with pytest.raises((NotImplementedError, RuntimeError)) as info:
        call()
    assert MISMATCH not in str(info.value)
    assert seen and set(seen) == {"meta"}, seen


def _cpu_batch(n=3, width=6):
    ids = torch.randint(3, 50, (n, width))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "loss_mask": torch.ones(n, width)}


def test_torch_learner_moves_each_micro_batch_to_its_module(meta_model):
    from rlpretrain.algorithms.objectives import NextTokenObjective
    from rlpretrain.learner.torch import TorchLearner

    module, seen = meta_model
    cfg = SimpleNamespace(lr=1e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.0, lr_schedule="constant",
                          warmup_steps=0, min_lr_ratio=1.0, grad_clip=1.0, max_tokens_per_micro_batch=6,
                          micro_batch_min_fill=0.0, precision="fp32")
    learner = TorchLearner(cfg, module, total_steps=1)
    assert learner.device.type == "meta"
    _runs_on_meta(lambda: learner.train_step(_cpu_batch(), NextTokenObjective()), seen)


def test_sequence_logprobs_runs_on_the_module_device(meta_model):
    from rlpretrain.algorithms.update import sequence_logprobs

    module, seen = meta_model
    _runs_on_meta(lambda: sequence_logprobs(module, _cpu_batch(), 1.0, max_tokens=64), seen)


def test_scorer_builds_rows_on_the_module_device(meta_model):
    from rlpretrain.models.scorer import TeacherForcedScorer

    module, seen = meta_model
    scorer = TeacherForcedScorer(module, pad_id=0)
    _runs_on_meta(lambda: scorer.tail_logprobs([[5, 6, 7, 8], [9, 10, 11]], n_tail=1), seen)


def test_next_token_heldout_loss_moves_its_rows(meta_model):
    from rlpretrain.methods.tpt.ntp import heldout_loss

    module, seen = meta_model
    _runs_on_meta(lambda: heldout_loss(module, [[5, 6, 7], [8, 9]], bos=1), seen)


@pytest.mark.parametrize("kind", ["value_head", "separate"])
def test_critic_is_built_on_the_policy_device_and_scores_there(meta_model, kind):
    from rlpretrain.algorithms.critic_update import build_critic

    module, seen = meta_model
    critic = build_critic(SimpleNamespace(critic=kind), module)
    assert {p.device.type for p in critic.parameters()} == {"meta"}  # the value head too, built on the CPU
    if kind == "value_head":  # it runs the policy itself: its forward must see meta inputs
        from rlpretrain.algorithms.critic_update import Critic
        from rlpretrain.learner.config import LearnerConfig

        cfg = SimpleNamespace(critic=kind, critic_lr=1e-3, gamma=1.0, lam=1.0, value_clip=None)
        learner_cfg = LearnerConfig(lr=1e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.0,
                                    lr_schedule="constant", warmup_steps=0, min_lr_ratio=1.0, grad_clip=1.0,
                                    max_tokens_per_micro_batch=64, micro_batch_min_fill=0.0, precision="fp32")
        crit = Critic(cfg, module, learner_cfg, total_steps=1)
        _runs_on_meta(lambda: crit.advantages(_cpu_batch(), torch.zeros(3)), seen)


def test_pick_device_errors_are_clear():
    from rlpretrain.models.loading import pick_device

    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be auto, cpu or cuda"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA device.*device=cpu or device=auto"):
            pick_device("cuda")


def test_cli_device_cuda_without_cuda_fails_clearly(model_cache, tmp_path):
    """One line on stderr from the command line, no traceback."""
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import small_run

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = subprocess.run([sys.executable, "-m", "rlpretrain.cli", *small_run(model_cache, tmp_path / "run"),
                           f"hydra.run.dir={tmp_path / 'run'}", "device=cuda"],
                          cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "error: device=cuda, but torch" in proc.stderr and "sees no CUDA device" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_ray_gpu_share():
    from rlpretrain.launch.ray import gpu_share

    assert gpu_share(None, "auto", cluster_gpus=0, actors=2) == 0.0  # a CPU machine
    assert gpu_share(None, "cpu", cluster_gpus=8, actors=2) == 0.0  # asked for the CPU
    assert gpu_share(None, "auto", cluster_gpus=1, actors=2) == 0.5  # learner and worker share the GPU
    assert gpu_share(None, "cuda", cluster_gpus=1, actors=3) == 0.3333  # 3 x 0.3333 fits in one GPU
    assert gpu_share(None, "cuda", cluster_gpus=8, actors=3) == 1.0  # a rank uses one device
    assert gpu_share(0.25, "cpu", cluster_gpus=0, actors=2) == 0.25  # an explicit count wins
