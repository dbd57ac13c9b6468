"""Plain next-token loss and accuracy (no thoughts) on held-out documents, for a run's checkpoints.

RLP's claim is that reasoning during pretraining improves plain next-token prediction (v2 reports
perplexity falling, Table S.8). This scores the first and the last checkpoint of a run (version 0
is the initial model) on the held-out split of the run's data (`data.split=test`):

    python -m rlpretrain.eval.heldout_ntp RUN_DIR [--max-tokens 512]

Loss is the token mean of -log p(x_t | x_<t) over every document token after the first;
accuracy is the share of those tokens that are the model's argmax. Printed, and written to
RUN_DIR/eval/heldout_ntp.json.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from rlpretrain.models.device import module_device


@torch.no_grad()
def loss_and_accuracy(model, docs: list[list[int]]) -> dict:
    """Token-mean next-token loss and argmax accuracy over the documents, one document per forward."""
    model.eval()
    nll, correct, count = 0.0, 0, 0
    device = module_device(model)
    for ids in docs:
        x = torch.tensor([ids], device=device)
        logits = model(input_ids=x).logits[0, :-1].float()
        target = x[0, 1:]
        nll += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
        correct += int((logits.argmax(-1) == target).sum())
        count += len(ids) - 1
    return {"loss": nll / count, "perplexity": math.exp(nll / count), "accuracy": correct / count,
            "tokens": count, "docs": len(docs)}


def heldout_docs(run_cfg, tokenizer, max_tokens: int) -> list[list[int]]:
    from rlpretrain.data.documents import load_documents

    data = run_cfg.data.copy()
    data.split = "test"
    ids = tokenizer(load_documents(data, run_cfg.seed), add_special_tokens=False)["input_ids"]
    return [d[:max_tokens] for d in ids if len(d) > 1]


def evaluate_run(run_dir: Path, max_tokens: int = 512) -> dict:
    from rlpretrain.checkpoint import first_and_last
    from rlpretrain.models.loading import load_policy, pick_device
    from rlpretrain.run import load_run_config

    run_cfg = load_run_config(run_dir)
    if run_cfg is None:
        raise FileNotFoundError(f"{run_dir} has no run.yaml: not a run directory")
    docs, out = None, {}
    for label, ckpt in first_and_last(run_dir):
        tokenizer, model = load_policy(ckpt / "policy", "float32", pick_device(run_cfg.device))
        docs = docs or heldout_docs(run_cfg, tokenizer, max_tokens)
        out[label] = {"checkpoint": ckpt.name, **loss_and_accuracy(model, docs)}
    (run_dir / "eval").mkdir(exist_ok=True)
    (run_dir / "eval" / "heldout_ntp.json").write_text(json.dumps(out, indent=2))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--max-tokens", type=int, default=512, help="documents truncated to this many tokens")
    args = parser.parse_args()
    out = evaluate_run(args.run_dir, args.max_tokens)
    print(f"held-out next-token prediction, no thoughts ({out['before']['docs']} documents, "
          f"{out['before']['tokens']} tokens):")
    for label, r in out.items():
        print(f"  {label:6s} ({r['checkpoint']}): loss {r['loss']:.4f}  perplexity {r['perplexity']:.3f}  "
              f"accuracy {100 * r['accuracy']:.2f}%")


if __name__ == "__main__":
    main()
