"""Bad input fails before training, with a message that says what to fix."""

import json
import subprocess
import sys

import pytest

from rlpretrain.loop import train


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "rlpretrain.cli", *args], capture_output=True, text=True, timeout=120)


def test_unknown_experiment_lists_available():
    out = _cli("experiment=nope")
    assert out.returncode != 0
    assert "Could not find 'experiment/nope'" in out.stderr
    assert "quickstart" in out.stderr and "rlp_qwen3_1.7b" in out.stderr


def test_unknown_key_and_wrong_type_are_named():
    out = _cli("trainer.max_stepz=3")
    assert out.returncode != 0 and "Key 'max_stepz' not in 'TrainerConfig'" in out.stderr
    out = _cli("trainer.max_steps=abc")
    assert out.returncode != 0 and "Value 'abc' of type 'str' could not be converted to Integer" in out.stderr


def test_help_lists_experiments():
    out = _cli("--help")
    listed = next(line for line in out.stdout.splitlines() if line.strip().startswith("experiment:"))
    assert out.returncode == 0 and {"quickstart", "rlp_qwen3_1.7b", "azr_quickstart"} <= set(listed.split(":")[1].replace(",", " ").split())


def test_missing_model_path_cli(tmp_path):
    out = _cli(f"model.name_or_path={tmp_path}/nowhere", f"hydra.run.dir={tmp_path}/run")
    assert out.returncode == 1
    assert out.stderr.strip() == f"error: model.name_or_path '{tmp_path}/nowhere' does not exist (not a directory)"


def test_empty_dataset(small_cfg, tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    cfg = small_cfg("data=hf", "data.path=json", f"data.data_files={tmp_path}/empty.jsonl")
    with pytest.raises(ValueError, match="could not load dataset|the dataset is empty"):
        train(cfg)
    with pytest.raises(ValueError, match=f"data_files {tmp_path}/empty.jsonl\\): it has no rows"):
        train(cfg)  # the file is named (datasets itself says only "StopIteration")


def test_dataset_from_local_files_and_short_documents(small_cfg, tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"text": t}) for t in ["1 + 2", "3 +"]))
    cfg = small_cfg("data=hf", "data.path=json", f"data.data_files={path}", "method.min_context=8")
    with pytest.raises(ValueError, match=r"all 2 documents are shorter than 9 tokens \(the minimum context plus the target\)"):
        train(cfg)


def test_missing_text_column(small_cfg, tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps({"body": "12 + 30 = 42 . 42 + 30 = 72 ."}))
    cfg = small_cfg("data=hf", "data.path=json", f"data.data_files={path}")
    with pytest.raises(ValueError, match=r"has no column 'text'; columns: \['body'\]"):
        train(cfg)


def test_reward_path_that_does_not_import(small_cfg):
    cfg = small_cfg("method.rewards=[{name: no_such_pkg.reward_fn, weight: 1.0}]")
    with pytest.raises(RuntimeError, match="cannot import module 'no_such_pkg'"):
        train(cfg)


def test_group_choice_on_command_line_wins_over_experiment():
    from conftest import compose_cfg
    assert compose_cfg().algorithm.adv_estimator == "rloo"
    assert compose_cfg("algorithm=ppo").algorithm.adv_estimator == "gae"
    assert compose_cfg("algorithm=grpo").algorithm.adv_estimator == "grpo"
