"""The embedded model's properties, loading any local HF directory, TensorBoard and plots."""

from pathlib import Path

import pytest

from rlpretrain.loop import train
from rlpretrain.plot import main as plot_main
from rlpretrain.tracking import read_metrics


def test_embedded_model(small_model, model_cache):
    tokenizer, model = small_model
    cfg = model.config
    assert cfg.hidden_size // cfg.num_attention_heads >= 32  # vLLM's CPU attention needs heads of 32+
    for tag in ("<think>", "</think>"):
        assert tag in tokenizer.all_special_tokens
        ids = tokenizer(f"12 {tag} 3", add_special_tokens=False)["input_ids"]
        tag_id = tokenizer.convert_tokens_to_ids(tag)
        assert ids.count(tag_id) == 1 and tokenizer.decode([tag_id]) == tag  # never split
    built = list(Path(model_cache).glob("embedded-tiny-*/build_info.json"))
    assert len(built) == 1  # built once, reused by every test since


@pytest.mark.slow
def test_local_model_dir_tensorboard_and_plot(small_cfg, tmp_path):
    first = small_cfg("trainer.max_steps=1", run_dir=tmp_path / "a")
    train(first)
    policy_dir = tmp_path / "a" / "checkpoints" / "step_000001" / "policy"
    cfg = small_cfg("trainer.max_steps=2", f"model.name_or_path={policy_dir}", "tracking.tensorboard=true",
                    run_dir=tmp_path / "b")
    train(cfg)
    assert [m["step"] for m in read_metrics(tmp_path / "b")] == [1, 2]
    assert list((tmp_path / "b" / "tensorboard").glob("events.out.tfevents.*"))
    plot_main([str(tmp_path / "b")])
    png = tmp_path / "b" / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    with pytest.raises(SystemExit, match="has no metrics.jsonl"):
        plot_main([str(tmp_path / "nothing")])
