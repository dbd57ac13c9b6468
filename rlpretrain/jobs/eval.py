"""The eval job: a model or a checkpoint on an evaluation suite (conf/eval/), through the rollout
engine the launcher places; writes samples.jsonl and results.json into the run directory.

    rlpretrain job=eval eval=smollm2_code model=smollm2_135m
    rlpretrain job=eval eval=smollm2_code eval.checkpoint=RUN/checkpoints/step_000060/policy
    rlpretrain job=eval ... resume=auto hydra.run.dir=THAT_RUN     # continue a killed evaluation
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

from rlpretrain.eval.config import EvalConfig
from rlpretrain.eval.suite import check_suite, evaluate_suite
from rlpretrain.jobs.launching import launched
from rlpretrain.models.loading import load_model_and_tokenizer, pick_device
from rlpretrain.seeding import seed_everything

REPO = Path(__file__).resolve().parent.parent.parent


def project_commit() -> str | None:
    """The checkout's commit, with "+dirty" when files differ from it; None outside a git checkout."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def engine_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    package = {"hf": "transformers", "vllm": "vllm"}.get(name, name)
    try:
        return f"{package} {version(package)}"
    except PackageNotFoundError:
        return f"{package} (not installed here)"


def eval_body(cfg, placer) -> dict:
    seed_everything(cfg.seed)
    tokenizer, model = load_model_and_tokenizer(cfg.model, pick_device(cfg.device))
    engine = placer.engine(cfg, model, tokenizer, cfg.run_dir)
    import torch

    provenance = {
        "model": {"name_or_path": cfg.model.name_or_path, "gguf_file": cfg.model.gguf_file,
                  "checkpoint": cfg.eval.checkpoint, "dtype": cfg.model.dtype},
        "engine": {"name": cfg.rollout.name, "version": engine_version(cfg.rollout.name), "torch": torch.__version__,
                   "device": str(getattr(model, "device", cfg.device)), "launcher": cfg.launcher.name},
        "project_commit": project_commit(), "seed": cfg.seed,
        "command": " ".join(["rlpretrain", *sys.argv[1:]]),
    }
    return evaluate_suite(typed_suite(cfg), engine, tokenizer, Path(cfg.run_dir), provenance, cfg.seed,
                          cfg.tracking.progress)


def typed_suite(cfg) -> EvalConfig:
    """The `eval` node as its dataclasses (converted once, here: the suite code takes typed config)."""
    return OmegaConf.to_object(cfg.eval)


def run_eval(cfg) -> None:
    run_dir = Path(cfg.run_dir)
    check_suite(typed_suite(cfg))
    if cfg.eval.checkpoint:
        if not Path(cfg.eval.checkpoint).is_dir():
            raise FileNotFoundError(f"eval.checkpoint: no directory {cfg.eval.checkpoint}")
        cfg.model.name_or_path, cfg.model.gguf_file = str(cfg.eval.checkpoint), None
    results = launched(cfg, eval_body)
    print(format_results(results))
    print(f"  run dir: {run_dir}")


def format_results(results: dict) -> str:
    lines = [f"\neval suite {results['suite']}: {results['model']['checkpoint'] or results['model']['name_or_path']}",
             "| benchmark | examples | metric | value |", "|---|---|---|---|"]
    for label, m in results["benchmarks"].items():
        k = m["k"]
        shown = [f"mean@{k}", *sorted((key for key in m if key.startswith("pass@")), key=lambda x: int(x[5:]))]
        shown += [f"maj@{k}"] if k > 1 else []  # with one sample, mean@1 = pass@1 = maj@1
        for key in dict.fromkeys(shown):
            lines.append(f"| {label} | {m['n_examples']} | {key} | {m[key]:.2f} |")
        for source, sm in m.get("by_source", {}).items():  # e.g. RPT's easy/medium/hard splits
            lines.append(f"| {label} / {source} | {sm['n_examples']} | mean@{k} | {sm[f'mean@{k}']:.2f} |")
    for name, value in results.get("aggregates", {}).items():
        lines.append(f"| {name} (aggregate) | | | {value:.2f} |")
    return "\n".join(lines)
