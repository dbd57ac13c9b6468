"""The GPU suite (`pytest -m gpu tests`): each path a few steps on `device=cuda`, through the same
composed configs and runners as `rlpretrain ...`, plus CPU/CUDA agreement checks. Skipped without
CUDA (tests/conftest.py). Runs on a bare CUDA machine: the small embedded model is built here.
"""

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlpretrain.jobs import run
from rlpretrain.tracking import read_metrics
from tests.conftest import SMALL_MODEL, compose_cfg, small_run

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

DEVICE = "cuda"


def _on_device() -> None:
    """The run put its tensors on the GPU (a run that silently stayed on the CPU allocates nothing there)."""
    assert torch.cuda.max_memory_allocated() > 0


def _trains(cfg, steps: int) -> list[dict]:
    """Runs `cfg` as `rlpretrain` would; every step logged, every number finite."""
    if DEVICE == "cuda":
        torch.cuda.reset_peak_memory_stats()
    run(cfg)
    metrics = read_metrics(Path(cfg.run_dir))
    assert [m["step"] for m in metrics] == list(range(1, steps + 1))
    for m in metrics:
        assert all(math.isfinite(v) for v in m.values() if isinstance(v, float)), m
    if DEVICE == "cuda":
        _on_device()
    return metrics


def test_rlp_quickstart(small_cfg):
    metrics = _trains(small_cfg(f"device={DEVICE}", "trainer.max_steps=3"), 3)
    assert metrics[-1]["policy_version"] == 3


def test_ppo_with_a_critic(small_cfg):
    metrics = _trains(small_cfg(f"device={DEVICE}", "trainer.max_steps=2", "algorithm=ppo"), 2)
    assert metrics[-1]["critic/value_loss"] > 0


def test_ppo_value_head_critic(small_cfg):
    metrics = _trains(small_cfg(f"device={DEVICE}", "trainer.max_steps=2", "algorithm=ppo",
                                "algorithm.critic=value_head"), 2)
    assert metrics[-1]["critic/value_loss"] > 0


def test_kl_reference_and_old_logprobs(small_cfg):
    metrics = _trains(small_cfg(f"device={DEVICE}", "trainer.max_steps=2", "algorithm.kl_coef=0.1",
                                "algorithm.ppo_epochs=2", "algorithm.mini_batches=2"), 2)
    assert "kl" in metrics[-1] and metrics[-1]["policy_version"] == 8  # 2 steps x 2 epochs x 2 mini-batches


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero(small_cfg, stage):
    _trains(small_cfg(f"device={DEVICE}", "trainer.max_steps=2", "learner=deepspeed",
                      f"learner.deepspeed.zero_stage={stage}"), 2)


def test_lora(small_cfg):
    _trains(small_cfg(f"device={DEVICE}", "trainer.max_steps=2", "learner.lora.r=4"), 2)


@pytest.fixture(scope="module")
def rpt_run(model_cache, tmp_path_factory) -> Path:
    """The RPT quickstart, shortened: format warm-up, entropy pre-pass, 2 steps, eval before and after."""
    from tests.test_rpt_e2e import RPT

    run_dir = tmp_path_factory.mktemp("rpt") / "run"
    cfg = compose_cfg(*SMALL_MODEL, f"model.cache_dir={model_cache}", f"run_dir={run_dir}", *RPT,
                      f"device={DEVICE}", "trainer.max_steps=2", "method.eval.before=true", "method.eval.after=true",
                      "tracking.progress=false", "tracking.tensorboard=false")
    _trains(cfg, 2)
    return run_dir


def test_rpt_quickstart(rpt_run):
    after = json.loads((rpt_run / "eval" / "after.json").read_text())
    assert {r["mode"] for r in after["rows"]} == {"standard", "reasoning"} and after["num_positions"] > 0


def test_eval_cli(rpt_run, tmp_path):
    from rlpretrain.eval.cli import main

    ckpt = rpt_run / "checkpoints" / "step_000002" / "policy"
    assert main([str(ckpt), "--data", "synthetic", "--num-docs", "6", "--num-positions", "5", "--max-new-tokens", "6",
                 "--out", str(tmp_path / "ev"), "--template", "concise", "--device", DEVICE]) == 0
    result = json.loads((tmp_path / "ev" / "next_token_accuracy.json").read_text())
    assert {r["mode"] for r in result["rows"]} == {"standard", "reasoning"}


def test_tpt_quickstart(model_cache, tmp_path):
    cfg = compose_cfg(
        *SMALL_MODEL, f"model.cache_dir={model_cache}", "experiment=tpt_quickstart", f"device={DEVICE}",
        f"run_dir={tmp_path / 'run'}", "data.num_docs=16", "method.generate.shard_size=8", "method.generate.batch_size=8",
        "method.generate.max_doc_tokens=64", "method.generate.max_thinking_tokens=6", "method.train.seq_len=64",
        "method.train.batch_size=4", "method.train.token_budget=1024", "method.train.eval_docs=8",
        "method.train.eval_every=2", "method.train.eval_source.num_docs=40", "tracking.progress=false")
    if DEVICE == "cuda":
        torch.cuda.reset_peak_memory_stats()
    run(cfg)
    arms = json.loads((tmp_path / "run" / "comparison.json").read_text())["arms"]
    assert set(arms) == {"vanilla", "tpt"}
    assert all(a["steps"] == 4 and math.isfinite(a["eval_loss_last"]) for a in arms.values())
    if DEVICE == "cuda":
        _on_device()


def test_vllm_rollout_from_the_command_line(model_cache, tmp_path):
    """`rlpretrain rollout=vllm device=cuda` in its own process: vLLM takes its share of the GPU's
    memory from what is free, which earlier tests in this process would have cut."""
    pytest.importorskip("vllm", reason="vLLM is not installed")
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "rlpretrain.cli", *small_run(model_cache, run_dir),
                           f"hydra.run.dir={run_dir}", f"device={DEVICE}", "trainer.max_steps=2", "rollout=vllm"],
                          cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "quickstart: 2 steps in" in proc.stdout, proc.stdout
    metrics = read_metrics(run_dir)
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(math.isfinite(v) for m in metrics for v in m.values() if isinstance(v, float)), metrics


# ---------------------------------------------------------------- agreement


def _batch(tokenizer, seed: int = 0):
    """A scored RL batch: 3 prompts x 3 completions of random lengths, with RLOO advantages."""
    from rlpretrain.algorithms.update import group_advantages
    from rlpretrain.rollout.batch import RolloutBatch

    rng = random.Random(seed)
    vocab = len(tokenizer)
    prompts = [[rng.randrange(3, vocab) for _ in range(rng.randint(4, 12))] for _ in range(3)]
    completions = [[rng.randrange(3, vocab) for _ in range(rng.randint(2, 10))] for _ in range(9)]
    batch = RolloutBatch(prompt_ids=[prompts[i // 3] for i in range(9)], completion_ids=completions,
                         sampling_logprobs=[[0.0] * len(c) for c in completions], finish_reasons=["length"] * 9,
                         rewards=[rng.uniform(-1, 1) for _ in range(9)], group=[i // 3 for i in range(9)],
                         policy_version=0)
    batch.advantages = group_advantages(batch, "rloo")
    return batch.to_tensors(tokenizer.pad_token_id)


def test_learner_step_agrees_on_cpu_and_cuda(small_model, model_cache):
    """One fp32 step from the same weights and batch: the loss terms and the grad norm within 1e-4."""
    import copy

    from rlpretrain.algorithms.objectives import PolicyGradientObjective
    from rlpretrain.algorithms.update import sequence_logprobs
    from rlpretrain.learner.torch import TorchLearner

    tokenizer, model = small_model
    cfg = compose_cfg(*SMALL_MODEL, f"model.cache_dir={model_cache}", "learner.precision=fp32",
                      "learner.max_tokens_per_micro_batch=64", "algorithm.entropy_coef=0.01")
    tensors = _batch(tokenizer)
    # π_old a little off the current policy, so the ratio (and the loss) depends on the weights
    noise = 0.05 * torch.randn(tensors["input_ids"].shape, generator=torch.Generator().manual_seed(1))
    tensors["old_logprobs"] = sequence_logprobs(model, tensors, 1.0, 4096) + noise * tensors["loss_mask"]
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 (the default, set here so it is sure)
    results = {}
    for device in ("cpu", DEVICE):
        learner = TorchLearner(cfg.learner, copy.deepcopy(model).to(device), total_steps=1)
        results[device] = learner.train_step({k: v.clone() for k, v in tensors.items()},
                                             PolicyGradientObjective(cfg.algorithm, temperature=1.0))
    cpu, gpu = results["cpu"], results[DEVICE]
    assert cpu["micro_batches"] > 1  # accumulation over several micro-batches on both
    for key in ("pg_loss", "entropy", "grad_norm"):
        assert gpu[key] == pytest.approx(cpu[key], rel=1e-4), key


def test_hf_engine_logprobs_match_teacher_forcing_on_cuda(small_model):
    import copy

    from rlpretrain.rollout.config import RolloutConfig
    from rlpretrain.rollout.base import SamplingParams
    from rlpretrain.rollout.hf import HFEngine

    tokenizer, model = small_model
    module = copy.deepcopy(model).to(DEVICE)
    engine = HFEngine(RolloutConfig(), module, tokenizer)
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in ["12 + 34 = 46 . 46 + 34 =", "7", "90 + 15 ="]]
    generations = engine.generate(prompts, SamplingParams(max_new_tokens=12, temperature=0.7, n=4, seed=3))
    for prompt, group in zip(prompts, generations):
        for c in group:
            ids = torch.tensor([prompt + c.token_ids], device=DEVICE)
            with torch.no_grad():
                logits = module(input_ids=ids).logits[0, len(prompt) - 1:-1].float() / 0.7
            expected = torch.log_softmax(logits, -1).gather(-1, ids[0, len(prompt):, None]).squeeze(-1).cpu()
            assert torch.allclose(torch.tensor(c.logprobs), expected, atol=1e-3)


def test_rollout_correction_logs_the_mismatch(small_cfg):
    metrics = _trains(small_cfg(f"device={DEVICE}", "trainer.max_steps=2", "algorithm.rollout_correction=tis"), 2)
    assert all(m["mismatch/kl"] >= 0 and 0 < m["mismatch/is_weight_mean"] <= 2.0 for m in metrics)


def test_efficiency_options_give_the_plain_step(small_model, model_cache):
    """Chunked log-probs, padding-free rows and activation checkpointing on the GPU: the plain step's numbers."""
    import copy

    from rlpretrain.algorithms.objectives import PolicyGradientObjective
    from rlpretrain.learner.torch import TorchLearner

    tokenizer, model = small_model
    options = ["learner.logprob_chunk_tokens=16", "learner.padding_free=true", "learner.gradient_checkpointing=true"]
    tensors = _batch(tokenizer)
    results = {}
    for name, extra in (("plain", []), ("options", options)):
        cfg = compose_cfg(*SMALL_MODEL, f"model.cache_dir={model_cache}", "learner.precision=fp32",
                          "learner.max_tokens_per_micro_batch=4096", *extra)
        learner = TorchLearner(cfg.learner, copy.deepcopy(model).to(DEVICE), total_steps=1)
        results[name] = learner.train_step({k: v.clone() for k, v in tensors.items()},
                                           PolicyGradientObjective(cfg.algorithm, temperature=1.0))
    for key in ("pg_loss", "grad_norm"):
        assert results["options"][key] == pytest.approx(results["plain"][key], rel=1e-4, abs=1e-7), key


def test_heldout_evaluation_agrees_on_cpu_and_cuda(small_model):
    import copy

    from rlpretrain.eval.heldout_ntp import loss_and_accuracy

    tokenizer, model = small_model
    docs = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in ["12 + 34 = 46 . 46 + 34 = 80", "90 + 15 = 105"]]
    cpu = loss_and_accuracy(copy.deepcopy(model), docs)
    gpu = loss_and_accuracy(copy.deepcopy(model).to(DEVICE), docs)
    assert gpu["loss"] == pytest.approx(cpu["loss"], rel=1e-4) and gpu["tokens"] == cpu["tokens"]


def test_rl_with_in_training_evaluation(small_cfg):
    """The eval suite through the loop's engine on the device (HumanEval from its package, graded in the sandbox)."""
    metrics = _trains(small_cfg(f"device={DEVICE}", "trainer.max_steps=2", "trainer.eval_every=2",
                                "+eval.benchmarks=[{name: humaneval_pkg, template: plain, max_new_tokens: 8, limit: 2}]"), 2)
    assert "eval/humaneval_pkg/pass@1" in metrics[-1]


def test_azr_two_steps(model_cache, tmp_path):
    from tests.conftest import SMALL_MODEL, compose_cfg

    cfg = compose_cfg("experiment=azr_quickstart", "model=tiny", *SMALL_MODEL, f"model.cache_dir={model_cache}",
                      f"run_dir={tmp_path / 'azr'}", f"device={DEVICE}", "trainer.max_steps=2",
                      "method.prompt_format=none", "method.max_prompt_tokens=200", "method.batch_per_task_role=2",
                      "method.learnability_rollouts=2", "method.seed_buffer_size=0", "method.heldout_per_type=0",
                      "method.sandbox.workers=1", "rollout.max_new_tokens=12", "tracking.progress=false")
    _trains(cfg, 2)
    from tests.test_azr_e2e import check_heldout_evaluation

    if DEVICE == "cuda":
        torch.cuda.reset_peak_memory_stats()
    check_heldout_evaluation(Path(cfg.run_dir), "step_000002")  # the checkpoints answer on the run's device
    if DEVICE == "cuda":
        _on_device()
