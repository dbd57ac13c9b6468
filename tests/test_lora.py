"""LoRA via peft (rlpretrain/learner/lora.py): merged weights equal peft's own merge, the export
loads with from_pretrained and predicts as the adapted model, resume is exact, both learners run."""

from __future__ import annotations

import copy

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from rlpretrain.learner.config import LearnerConfig, LoraConfig
from rlpretrain.learner.lora import apply_lora, merged_named_weights
from rlpretrain.learner.torch import TorchLearner
from rlpretrain.loop import train
from rlpretrain.tracking import read_metrics


def _adapted(model, r=4):
    lora = apply_lora(copy.deepcopy(model), OmegaConf.structured(LoraConfig(r=r)))
    with torch.no_grad():  # peft starts B at zero (delta 0): give the adapters something to merge
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn_like(p) * 0.05)
    return lora


def test_merged_weights_equal_peft_merge(small_model):
    _, model = small_model
    lora = _adapted(model)
    ours = dict(merged_named_weights(lora))
    reference = copy.deepcopy(lora).merge_and_unload().state_dict()
    assert ours.keys() == reference.keys()
    assert all(torch.allclose(ours[k], reference[k], atol=1e-6) for k in reference)
    changed = [k for k in reference if not torch.equal(reference[k], model.state_dict()[k])]
    assert changed and all("proj" in k for k in changed)  # only the adapted layers moved


def test_only_adapters_train_and_export_predicts_as_the_adapted_model(small_model, tmp_path):
    _, model = small_model
    lora = _adapted(model)
    learner = TorchLearner(OmegaConf.structured(LearnerConfig()), lora, total_steps=1)
    trained = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in n for n in trained)
    learner.export_model(tmp_path / "export")
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "export")
    ids = torch.tensor([[3, 4, 5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.allclose(exported(input_ids=ids).logits, lora(input_ids=ids).logits, atol=1e-5)


def test_unknown_target_module_is_named(small_model):
    _, model = small_model
    with pytest.raises(ValueError, match=r"target_modules: \['qkv'\] are not modules of this model"):
        apply_lora(copy.deepcopy(model), OmegaConf.structured(LoraConfig(r=2, target_modules=["qkv"])))


@pytest.mark.slow
def test_lora_resume_is_exact(small_cfg, tmp_path):
    common = ("learner.lora.r=4", "checkpoint.every=2", "learner.lr=1e-3")
    train(small_cfg(*common, "trainer.max_steps=4", run_dir=tmp_path / "full"))
    train(small_cfg(*common, "trainer.max_steps=2", run_dir=tmp_path / "half"))
    train(small_cfg(*common, "trainer.max_steps=4", "resume=auto", run_dir=tmp_path / "half"))
    assert read_metrics(tmp_path / "full") == read_metrics(tmp_path / "half")
    for sub, name in (("adapter", "adapter_model.safetensors"), ("policy", "model.safetensors"),
                      ("ema", "model.safetensors")):
        a = load_file(tmp_path / "full/checkpoints/step_000004" / sub / name)
        b = load_file(tmp_path / "half/checkpoints/step_000004" / sub / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), sub
    # the exported policy is the merged model: no adapter names in it
    assert not [k for k in load_file(tmp_path / "full/checkpoints/step_000004/policy/model.safetensors") if "lora" in k]


@pytest.mark.slow
def test_lora_with_deepspeed_runs(small_cfg, tmp_path):
    summary = train(small_cfg("learner=deepspeed", "learner.lora.r=4", "trainer.max_steps=2"))
    assert len(read_metrics(summary.run_dir)) == 2
