"""The typed config: every experiment composes and validates; bad values, unknown keys and conflicting
settings fail before training with a message naming the key; typed configs built in code are checked too."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra.errors import ConfigCompositionException

from conftest import compose_cfg
from rlpretrain.checks import ConfigError
from rlpretrain.cli import CONF_DIR
from rlpretrain.config import validate

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_validates(experiment):
    validate(compose_cfg(f"experiment={experiment}"))


@pytest.mark.parametrize("override, message", [
    ("rollout.temperature=0", "rollout.temperature must be > 0 (RL trains on the sampling distribution; greedy "
                              "decoding has none), got 0.0"),
    ("rollout.temperature=-1", "rollout.temperature must be > 0 (RL trains on the sampling distribution; greedy "
                               "decoding has none), got -1.0"),
    ("rollout.top_p=2", "rollout.top_p must be in (0, 1], got 2.0"),
    ("rollout.top_p=0", "rollout.top_p must be in (0, 1], got 0.0"),
    ("rollout.max_new_tokens=0", "rollout.max_new_tokens must be >= 1, got 0"),
    ("trainer.max_steps=0", "trainer.max_steps must be >= 1, got 0"),
    ("learner.lr=-0.001", "learner.lr must be >= 0, got -0.001"),
    ("learner.lora.r=-1", "learner.lora.r must be >= 0 (0: no adapters), got -1"),
    ("algorithm.mini_batches=0", "algorithm.mini_batches must be >= 1, got 0"),
    ("method.ema_decay=1.5", "method.ema_decay must be in [0, 1], got 1.5"),
    ("method.max_context=4", "method.max_context must be >= min_context (16), got 4"),
    ("checkpoint.every=-1", "checkpoint.every must be >= 0 (0: only the first and the last step), got -1"),
])
def test_out_of_range_values_are_named(override, message):
    cfg = compose_cfg(override)
    with pytest.raises(ConfigError) as e:
        validate(cfg)
    assert str(e.value) == message


def test_nested_method_nodes_carry_their_path():
    cfg = compose_cfg("experiment=tpt_quickstart", "method.generate.top_p=1.5")
    with pytest.raises(ConfigError, match=r"^method\.generate\.top_p must be in \(0, 1\], got 1\.5$"):
        validate(cfg)
    cfg = compose_cfg("experiment=tpt_quickstart", "method.train.token_budget=0")
    with pytest.raises(ConfigError, match=r"^method\.train\.token_budget must be >= 1 or null \(trainer\.max_steps\), "
                                          r"got 0$"):
        validate(cfg)
    cfg = compose_cfg("experiment=rpt_quickstart", "method.eval.samples=0")
    with pytest.raises(ConfigError, match=r"^method\.eval\.samples must be >= 1, got 0$"):
        validate(cfg)


def test_a_key_added_with_plus_is_refused_with_the_valid_keys():
    cfg = compose_cfg("+trainer.max_step=3")  # Hydra accepts it: '+' opens the structured node
    with pytest.raises(ConfigError) as e:
        validate(cfg)
    assert str(e.value) == ("trainer.max_step is not a setting of TrainerConfig; did you mean trainer.max_steps? "
                            "Its keys: max_steps, eval_every. (A '+' override adds a key; the project's groups take only "
                            "their schema's keys.)")
    with pytest.raises(ConfigError, match=r"^rollout\.vllm\.gpu_memory is not a setting of VLLMConfig; did you mean "
                                          r"rollout\.vllm\.gpu_memory_utilization\?"):
        validate(compose_cfg("+rollout.vllm.gpu_memory=0.3"))
    validate(compose_cfg("experiment=tpt_ntp_quickstart", "+method.architecture.num_hidden_layers=2"))  # a free dict


def test_old_thought_tag_names_fail_naming_the_new_ones():
    with pytest.raises(ConfigCompositionException) as e:  # as a plain override: Hydra's own message
        compose_cfg("method.thought_open='<t>'")
    assert "Key 'thought_open' not in 'RLPConfig'" in str(e.value.__cause__)
    with pytest.raises(ConfigError, match=r"^method\.thought_close is not a setting of RLPConfig; did you mean "
                                          r"method\.think_close\?"):
        validate(compose_cfg("+method.thought_close='</t>'"))  # what Hydra's hint suggests next
    for experiment in ("quickstart", "rpt_quickstart", "tpt_generate"):  # RLP, RPT, TPT: one pair of names
        cfg = compose_cfg(f"experiment={experiment}", "method.think_open='<t>'", "method.think_close='</t>'")
        assert (cfg.method.think_open, cfg.method.think_close) == ("<t>", "</t>")


def test_token_budget_and_a_typed_max_steps_conflict():
    cfg = compose_cfg("experiment=tpt_ntp_quickstart", "trainer.max_steps=5")
    with pytest.raises(ConfigError) as e:
        validate(cfg, ["trainer.max_steps=5"])
    assert str(e.value) == ("trainer.max_steps was given (5), but method.token_budget=1024000 sets the number of "
                            "steps (250); give one of them (add method.token_budget=null to train 5 steps)")
    validate(cfg)  # not typed by the user: the experiment's budget decides, as documented
    validate(compose_cfg("experiment=tpt_ntp_quickstart", "trainer.max_steps=5", "method.token_budget=null"),
             ["trainer.max_steps=5", "method.token_budget=null"])
    with pytest.raises(ConfigError, match=r"^trainer\.max_steps was given \(5\), but method\.train\.token_budget="):
        validate(compose_cfg("experiment=tpt_quickstart", "++trainer.max_steps=5"), ["++trainer.max_steps=5"])


def test_typed_configs_built_in_code_are_checked():
    from rlpretrain.learner.config import LearnerConfig
    from rlpretrain.rollout.config import RolloutConfig

    with pytest.raises(ConfigError, match=r"^micro_batch_min_fill must be in \[0, 1\], got 2\.0$"):
        LearnerConfig(micro_batch_min_fill=2.0)
    with pytest.raises(ConfigError, match=r"^top_p must be in \(0, 1\], got 0$"):
        RolloutConfig(top_p=0)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "rlpretrain.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_refuses_before_any_work_with_one_line(tmp_path):
    run_dir = tmp_path / "run"
    out = _cli("+trainer.max_step=3", f"hydra.run.dir={run_dir}")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "error: trainer.max_step is not a setting of TrainerConfig; did you mean trainer.max_steps? Its keys: "
        "max_steps, eval_every. (A '+' override adds a key; the project's groups take only their schema's keys.)"]
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.jsonl").exists()
    out = _cli("experiment=tpt_ntp_quickstart", "trainer.max_steps=5", f"hydra.run.dir={run_dir}")
    assert out.returncode == 1
    assert out.stderr.strip() == ("error: trainer.max_steps was given (5), but method.token_budget=1024000 sets the "
                                  "number of steps (250); give one of them (add method.token_budget=null to train "
                                  "5 steps)")


def test_next_token_trainer_trains_only_the_response(tmp_path):
    """With lr 0 the weights stay and each step's loss is the mean cross-entropy over response tokens only."""
    import random

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from rlpretrain.algorithms.next_token_trainer import train_next_token, warmup_learner_config

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32))
    examples = [([3, 4, 5, 6, 7, 8], 3), ([9, 10, 11, 12], 1), ([13, 14, 15, 16, 17], 4), ([5, 6, 7], 2)]
    losses = train_next_token(model, examples, warmup_learner_config(0.0, 3, weight_decay=0.0), steps=3,
                              batch_size=2, pad_id=0, seed=5)
    rng = random.Random(5)
    for loss in losses:
        chosen = rng.sample(examples, 2)
        nll = []
        with torch.no_grad():
            for ids, start in chosen:
                logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
                nll += [-float(logp[j - 1, ids[j]]) for j in range(max(start, 1), len(ids))]
        assert loss == pytest.approx(sum(nll) / len(nll), rel=1e-5)
