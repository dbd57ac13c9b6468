"""RPT's hard-position filter (arXiv 2506.08007 §3.3): a proxy model's top-k next-token entropy.

At every position t ≥ 1 of every document the proxy sees x_<t and gives a next-token
distribution; we keep its k most probable tokens, renormalise them, and take the entropy (nats):

    H_t = -Σ_{i≤k} q_i log q_i,   q = softmax(top-k logits)

Positions with H_t below a threshold are easy and dropped from training. The pass is run once per
(corpus, tokenizer, proxy, k) and stored as a `datasets` dataset of rows (doc_id, position,
entropy) in parquet shards of `shard_docs` documents each; a shard is written to a temporary file
and renamed, so a restarted pass skips every finished shard and recomputes only the rest. All
positions are stored, so changing the threshold needs no new pass.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from functools import partial
from typing import Callable, Sequence

import torch
from tqdm import tqdm

log = logging.getLogger(__name__)
COLUMNS = ("doc_id", "position", "entropy")


def topk_entropy(logits: torch.Tensor, k: int = 16) -> torch.Tensor:
    """Entropy (nats) of the top-k renormalised distribution, over the last dimension."""
    k = min(k, logits.shape[-1])
    top = torch.topk(logits.float(), k, dim=-1).values
    logq = torch.log_softmax(top, dim=-1)
    return -(logq.exp() * logq).sum(-1)


@torch.no_grad()
def document_entropies(module, docs: Sequence[Sequence[int]], k: int, pad_id: int,
                       max_tokens: int = 16384, window: int = 2048) -> list[torch.Tensor]:
    """For each document, H_t for t = 1..len-1 (CPU fp32, length len-1).

    Documents longer than `window` tokens are scored in consecutive windows (a window's first
    positions see only that window's tokens). Batched through the TeacherForcedScorer.
    """
    from rlpretrain.models.scorer import TeacherForcedScorer

    pieces: list[tuple[int, list[int]]] = []  # (doc index, window tokens)
    for d, doc in enumerate(docs):
        for s in range(0, max(len(doc) - 1, 1), window):
            chunk = list(doc[s:s + window + 1])
            if len(chunk) >= 2:
                pieces.append((d, chunk))
    scorer = TeacherForcedScorer(module, pad_id, max_tokens)
    entropies = scorer.map_positions([chunk for _, chunk in pieces], lambda logits, ids: topk_entropy(logits, k))
    out: list[list[torch.Tensor]] = [[] for _ in docs]
    for (d, _), ent in zip(pieces, entropies):  # windows are in document order already
        out[d].append(ent)
    return [torch.cat(parts) if parts else torch.empty(0) for parts in out]


def cache_key(**parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def entropy_prepass(docs: Sequence[Sequence[int]], cache_dir: str | Path, score: Callable[[list], list],
                    shard_docs: int = 256, desc: str = "RPT entropy pre-pass", progress: bool = True):
    """Score every document once, shard by shard, into `cache_dir`; return the whole `datasets.Dataset`.

    `score(list of token-id lists) -> list of [len-1] entropy tensors` (e.g. a partial of
    `document_entropies`). Finished shards (`shard_NNNNN.parquet`) are not recomputed.
    """
    import datasets
    import pyarrow.parquet as pq

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta = {"num_docs": len(docs), "shard_docs": shard_docs}
    meta_path = cache_dir / "meta.json"
    if meta_path.exists() and json.loads(meta_path.read_text()) != meta:
        raise ValueError(f"entropy cache {cache_dir} was written for {meta_path.read_text()}, not {meta}; "
                         "remove it or choose another cache directory")
    meta_path.write_text(json.dumps(meta))
    n_shards = (len(docs) + shard_docs - 1) // shard_docs
    todo = [s for s in range(n_shards) if not _shard_path(cache_dir, s).exists()]
    if todo:
        log.info("entropy pre-pass: %d of %d shards to score in %s", len(todo), n_shards, cache_dir)
    with tqdm(total=len(docs), initial=len(docs) - sum(len(range(s * shard_docs, min(len(docs), (s + 1) * shard_docs)))
                                                         for s in todo),
              desc=desc, unit="doc", dynamic_ncols=True, disable=not progress or not todo) as bar:
        for s in todo:
            lo, hi = s * shard_docs, min(len(docs), (s + 1) * shard_docs)
            ents = score([list(d) for d in docs[lo:hi]])
            rows = {"doc_id": [], "position": [], "entropy": []}
            for d, e in zip(range(lo, hi), ents):
                rows["doc_id"].extend([d] * len(e))
                rows["position"].extend(range(1, len(e) + 1))
                rows["entropy"].extend(e.tolist())
            features = datasets.Features({"doc_id": datasets.Value("int64"), "position": datasets.Value("int64"),
                                          "entropy": datasets.Value("float32")})
            tmp = cache_dir / f".shard_{s:05d}.parquet.tmp"
            pq.write_table(datasets.Dataset.from_dict(rows, features=features).data.table, str(tmp))
            os.replace(tmp, _shard_path(cache_dir, s))
            bar.update(hi - lo)
    return load_entropies(cache_dir)


def _shard_path(cache_dir: Path, shard: int) -> Path:
    return cache_dir / f"shard_{shard:05d}.parquet"


def load_entropies(cache_dir: str | Path):
    """The stored rows as one `datasets.Dataset` (read with pyarrow: no copy in the HF cache)."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(Path(cache_dir).glob("shard_*.parquet"))
    if not files:
        return datasets.Dataset.from_dict({c: [] for c in COLUMNS})
    return datasets.Dataset(pa.concat_tables([pq.read_table(f) for f in files]))


def columns(dataset) -> zip:
    """(doc_id, position, entropy) triples, read straight from the Arrow table."""
    t = dataset.data
    return zip(*(t.column(c).to_pylist() for c in COLUMNS))


def hard_positions(dataset, threshold: float, num_docs: int) -> list[list[int]]:
    """For each document, the positions whose entropy is at least `threshold`."""
    out: list[list[int]] = [[] for _ in range(num_docs)]
    for d, p, e in columns(dataset):
        if e >= threshold:
            out[d].append(p)
    return out


def position_entropies(docs: list[list[int]], proxy, pad_id: int, m, cache_dir: Path, identity: dict,
                       max_tokens: int, progress: bool = True):
    """The cached pre-pass over `docs` (a `datasets.Dataset` of doc_id, position, entropy)."""
    digest = hashlib.sha256(json.dumps(docs).encode()).hexdigest()[:16]
    key = cache_key(docs=digest, k=m.entropy_top_k, window=m.entropy_window, **identity)
    score = partial(document_entropies, proxy, k=m.entropy_top_k, pad_id=pad_id, max_tokens=max_tokens,
                    window=m.entropy_window)
    return entropy_prepass(docs, cache_dir / key, score, shard_docs=m.entropy_shard_docs, progress=progress)
