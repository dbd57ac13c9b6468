"""Method v2 in the loop: the EMA teacher follows every optimizer step, and a method's life
(build, prepare, rollout, on_optimizer_step, close) runs in order, with close even on failure."""

from __future__ import annotations

import pytest
import torch

from rlpretrain.algorithms.update import PolicyUpdate
from rlpretrain.launch.local import place_local
from rlpretrain.loop import train
from rlpretrain.methods.base import METHODS, Method, MethodContext
from rlpretrain.models.loading import load_model_and_tokenizer
from rlpretrain.rollout.batch import RolloutBatch


def test_ema_teacher_updates_once_per_optimizer_step(small_cfg):
    cfg = small_cfg("algorithm.mini_batches=2", "algorithm.ppo_epochs=1", "method.ema_decay=0.9")
    tokenizer, policy = load_model_and_tokenizer(cfg.model, torch.device("cpu"))
    placed = place_local(cfg, policy, tokenizer)
    learner = placed.learner
    method = METHODS.get("rlp")(cfg, MethodContext(tokenizer, learner, cfg.learner.max_tokens_per_micro_batch))
    after_each_step = []  # the policy's weights after every optimizer step, seen independently of the method

    def on_step():
        method.on_optimizer_step()
        after_each_step.append({n: t.detach().clone() for n, t in learner.named_weights()})

    update = PolicyUpdate(cfg.algorithm, learner, tokenizer.pad_token_id, cfg.rollout.temperature,
                          cfg.trainer.max_steps, on_optimizer_step=on_step)
    initial = {n: t.detach().clone() for n, t in learner.named_weights()}
    method.prepare(placed.engine)
    for step in range(2):
        update(method.rollout(step, placed.engine))
    assert learner.version == 4 and len(after_each_step) == 4  # 2 batches x 2 mini-batches

    expected = initial  # φ ← τ·φ + (1−τ)·θ, once per optimizer step
    for weights in after_each_step:
        expected = {n: 0.9 * expected[n] + 0.1 * weights[n] for n in expected}
    teacher = method.ema.module.state_dict()
    for name, value in expected.items():
        torch.testing.assert_close(teacher[name], value, rtol=1e-5, atol=1e-6)
    # once per rollout batch (the old behaviour) would give another teacher
    per_batch = initial
    for weights in after_each_step[1::2]:
        per_batch = {n: 0.9 * per_batch[n] + 0.1 * weights[n] for n in per_batch}
    assert any(not torch.allclose(teacher[n], per_batch[n], rtol=1e-5, atol=1e-6) for n in per_batch)


class Recorder(Method):
    """A user's method: records its life, fails in its second rollout."""

    calls: list[str] = []

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        Recorder.calls = ["build"]

    def prepare(self, engine):
        Recorder.calls.append("prepare")

    def rollout(self, step, engine):
        Recorder.calls.append(f"rollout {step}")
        if step == 1:
            raise RuntimeError("rollout failed")
        ids = self.ctx.tokenizer("a b c", add_special_tokens=False)["input_ids"]
        return RolloutBatch(prompt_ids=[ids, ids], completion_ids=[ids, ids], sampling_logprobs=[[], []],
                            finish_reasons=["stop", "stop"], rewards=[0.0, 1.0], group=[0, 0],
                            policy_version=self.ctx.version)

    def on_optimizer_step(self):
        Recorder.calls.append("optimizer step")

    def close(self):
        Recorder.calls.append("close")


def test_method_life_in_order_and_closed_on_failure(small_cfg):
    if "recorder" not in METHODS:
        METHODS.register("recorder")(Recorder)
    cfg = small_cfg("method.name=recorder", "algorithm.mini_batches=2")
    with pytest.raises(RuntimeError, match="rollout failed"):
        train(cfg)
    assert Recorder.calls == ["build", "prepare", "rollout 0", "optimizer step", "optimizer step", "rollout 1", "close"]
