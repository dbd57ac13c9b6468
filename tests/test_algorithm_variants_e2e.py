"""Every estimator / loss / critic option runs through the real loop, and resume stays exact with a critic."""

import math
from pathlib import Path

import pytest
import torch

from rlpretrain.loop import train
from rlpretrain.tracking import read_metrics

pytestmark = pytest.mark.slow

VARIANTS = {
    "grpo": ["algorithm=grpo"],
    "dr_grpo": ["algorithm=dr_grpo", "algorithm.loss_agg=seq_mean_token_sum_norm", "algorithm.loss_norm_const=8"],
    "reinforce_pp": ["algorithm=reinforce_pp", "algorithm.loss_agg=token_mean"],
    "gspo": ["algorithm=gspo"],
    "kl_entropy": ["algorithm.kl_coef=0.1", "algorithm.kl_estimator=k3", "algorithm.entropy_coef=0.01"],
    "epochs_minibatches": ["algorithm.ppo_epochs=2", "algorithm.mini_batches=2", "algorithm.clip_high=0.28"],
    "ppo_separate_critic": ["algorithm=ppo"],
    "ppo_value_head": ["algorithm=ppo", "algorithm.critic=value_head"],
    "bf16": ["learner.precision=bf16"],
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_trains(small_cfg, tmp_path, name):
    cfg = small_cfg("trainer.max_steps=2", "learner.lr=1e-3", *VARIANTS[name])
    train(cfg)
    metrics = read_metrics(Path(cfg.run_dir))
    assert [m["step"] for m in metrics] == [1, 2] and metrics[-1]["policy_version"] >= 2
    for m in metrics:
        assert all(math.isfinite(v) for v in m.values()), m
    if name == "kl_entropy":
        assert "kl" in metrics[-1] and metrics[-1]["entropy"] > 0
    if name.startswith("ppo"):
        assert metrics[-1]["critic/value_loss"] > 0
    if name == "epochs_minibatches":
        assert metrics[-1]["policy_version"] == 8  # 2 steps x 2 epochs x 2 mini-batches


def test_trr_pp_needs_roles(small_cfg):
    with pytest.raises(ValueError, match="trr_pp needs"):
        train(small_cfg("algorithm=trr_pp", "trainer.max_steps=1"))


def test_resume_exact_with_critic(small_cfg, tmp_path):
    common = ["algorithm=ppo", "checkpoint.every=1", "learner.lr=1e-3"]
    train(small_cfg("trainer.max_steps=3", *common, run_dir=tmp_path / "full"))
    train(small_cfg("trainer.max_steps=1", *common, run_dir=tmp_path / "cut"))
    train(small_cfg("trainer.max_steps=3", "resume=auto", *common, run_dir=tmp_path / "cut"))
    assert read_metrics(tmp_path / "full") == read_metrics(tmp_path / "cut")
    a = torch.load(tmp_path / "full/checkpoints/step_000003/state.pt", weights_only=False)["update"]["critic"]
    b = torch.load(tmp_path / "cut/checkpoints/step_000003/state.pt", weights_only=False)["update"]["critic"]
    assert all(torch.equal(a[k], b[k]) for k in a)
