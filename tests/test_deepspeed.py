"""The DeepSpeed learner (real DeepSpeed, CPU accelerator, gloo) against the torch learner: ZeRO 1,
2 and 3 give the same loss curve and weights on the same data, in one process and in two, and a
run resumed from a DeepSpeed checkpoint equals an unbroken one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from transformers import LlamaConfig, LlamaForCausalLM

pytest.importorskip("deepspeed")

from rlpretrain.algorithms.objectives import NextTokenObjective  # noqa: E402
from rlpretrain.learner.config import LearnerConfig  # noqa: E402
from rlpretrain.learner.microbatch import pad_right  # noqa: E402
from rlpretrain.learner.torch import TorchLearner  # noqa: E402

STEPS = 4
# fp32 on both sides with the same AdamW: the differences are float summation order (DeepSpeed
# flattens gradients into buckets and reduces them) — a few ulps per step, far below any real bug,
# which shows up at 1e-2 and more (a wrong normaliser or a missed accumulation).
RTOL, ATOL = 1e-4, 1e-6


def learner_cfg(stage: int = 2, **kw):
    # eps=1 makes Adam's step ~ lr·g: with the default 1e-8 a gradient element that is rounding noise
    # gets a full-size step of either sign, and two correct implementations drift apart
    cfg = OmegaConf.structured(LearnerConfig(lr=1e-2, eps=1.0, grad_clip=1.0, max_tokens_per_micro_batch=40,
                                             micro_batch_min_fill=0.5, **kw))
    cfg.deepspeed.zero_stage = stage
    return cfg


def make_model():
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64))


def make_batch(step: int):
    """8 rows of different lengths; a budget of 40 tokens splits them into several micro-batches."""
    g = torch.Generator().manual_seed(100 + step)
    rows = [torch.randint(0, 50, (int(n),), generator=g).tolist() for n in torch.randint(4, 14, (8,), generator=g)]
    return {"input_ids": pad_right(rows, 0), "attention_mask": pad_right([[1] * len(r) for r in rows], 0),
            "loss_mask": pad_right([[0] + [1] * (len(r) - 1) for r in rows], 0, dtype=torch.float32)}


def _curve(learner):
    out = []
    for step in range(STEPS):
        stats = learner.train_step(make_batch(step), NextTokenObjective("token_mean"))
        out.append([stats["ntp_loss"], stats["grad_norm"]])
    return out


def _weights(learner):
    with learner.gathered():
        return {k: v.detach().clone() for k, v in learner.module.state_dict().items()}


@pytest.fixture(scope="module")
def reference():
    learner = TorchLearner(learner_cfg(), make_model(), total_steps=STEPS)
    return _curve(learner), _weights(learner)


def _assert_same(curve, weights, reference):
    ref_curve, ref_weights = reference
    assert torch.allclose(torch.tensor(curve), torch.tensor(ref_curve), rtol=RTOL, atol=ATOL), (curve, ref_curve)
    for k, v in ref_weights.items():
        assert torch.allclose(weights[k], v, rtol=RTOL, atol=ATOL), k


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_zero_stage_matches_torch_learner(stage, reference):
    from rlpretrain.learner.deepspeed import DeepSpeedLearner

    learner = DeepSpeedLearner(learner_cfg(stage), make_model(), total_steps=STEPS)
    curve = _curve(learner)
    assert [c[0] for c in curve] != [c[0] for c in curve[:1]] * STEPS  # it learns: the loss moves
    _assert_same(curve, _weights(learner), reference)


def test_optimizer_offload_matches_torch_learner(reference):
    from rlpretrain.learner.deepspeed import DeepSpeedLearner

    cfg = learner_cfg(3)
    cfg.deepspeed.offload_optimizer = True
    cfg.deepspeed.offload_params = True
    learner = DeepSpeedLearner(cfg, make_model(), total_steps=STEPS)
    _assert_same(_curve(learner), _weights(learner), reference)


@pytest.mark.parametrize("stage", [2, 3])
def test_efficiency_options_match_torch_learner(stage, reference):
    """Chunked log-probs (the LM head, tied to the embedding, called once per chunk and again in the
    backward: ZeRO-3 gathers it each time), packed rows and activation checkpointing."""
    from rlpretrain.learner.deepspeed import DeepSpeedLearner

    cfg = learner_cfg(stage, logprob_chunk_tokens=7, padding_free=True, gradient_checkpointing=True)
    learner = DeepSpeedLearner(cfg, make_model(), total_steps=STEPS)
    _assert_same(_curve(learner), _weights(learner), reference)


@pytest.mark.parametrize("stage", [2, 3])
def test_bf16_follows_the_fp32_curve(stage, reference):
    from rlpretrain.learner.deepspeed import DeepSpeedLearner

    learner = DeepSpeedLearner(learner_cfg(stage, precision="bf16"), make_model(), total_steps=STEPS)
    assert {p.dtype for p in learner.module.parameters()} == {torch.bfloat16}  # DeepSpeed holds the model in bf16
    curve, weights = _curve(learner), _weights(learner)
    # bf16 keeps 8 significant bits: each loss and weight is the fp32 one within its rounding (2^-8),
    # so a wrong scale or a step that did not happen (both far larger) still fails
    ref_curve, ref_weights = reference
    assert torch.allclose(torch.tensor(curve)[:, 0], torch.tensor(ref_curve)[:, 0], rtol=1e-2), (curve, ref_curve)
    for k, v in ref_weights.items():
        assert torch.allclose(weights[k].float(), v, rtol=1e-2, atol=2e-3), k


def test_bad_stage_is_named():
    from rlpretrain.learner.deepspeed import ds_config

    with pytest.raises(ValueError, match="zero_stage must be 1, 2 or 3, got 4"):
        ds_config(learner_cfg(4))
    cfg = learner_cfg(2)
    cfg.deepspeed.offload_params = True
    with pytest.raises(ValueError, match="offload_params needs zero_stage=3"):
        ds_config(cfg)


@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_two_ranks_under_torchrun_match_torch_learner(stage, reference, tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    script = Path(__file__).parent / "scripts" / "ds_two_ranks.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)  # torchrun sets its own
    out = tmp_path / "two"
    proc = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", str(29500 + stage), str(script),
                           str(Path(__file__).parent), str(stage), str(out)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    curve = json.loads(Path(str(out) + ".json").read_text())
    _assert_same(curve, torch.load(str(out) + ".pt"), reference)


@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_resume_from_deepspeed_checkpoint_is_exact(stage, small_cfg, tmp_path):
    from safetensors.torch import load_file

    from rlpretrain.loop import train
    from rlpretrain.tracking import read_metrics

    common = ("learner=deepspeed", f"learner.deepspeed.zero_stage={stage}", "checkpoint.every=2", "learner.lr=1e-3")
    train(small_cfg(*common, "trainer.max_steps=4", run_dir=tmp_path / "full"))
    train(small_cfg(*common, "trainer.max_steps=2", run_dir=tmp_path / "half"))
    train(small_cfg(*common, "trainer.max_steps=4", "resume=auto", run_dir=tmp_path / "half"))
    full, half = read_metrics(tmp_path / "full"), read_metrics(tmp_path / "half")
    assert len(full) == 4 and full == half
    for name in ("policy", "ema"):
        a = load_file(tmp_path / "full/checkpoints/step_000004" / name / "model.safetensors")
        b = load_file(tmp_path / "half/checkpoints/step_000004" / name / "model.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert (tmp_path / "half/checkpoints/step_000002/deepspeed/state").is_dir()
