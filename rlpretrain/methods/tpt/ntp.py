"""Next-token training on packed samples: TPT's training half and the continued-pretraining baseline.

    rlpretrain experiment=tpt_8b_scratch ...            # or any config with method=ntp

A sample is a document, or with thinking on, the template `{document}<think>{thinking}</think>`
(TPT, Method: x = [d; t]); samples from a weighted mixture of sources are packed into `seq_len`-token
sequences (`StreamPacker`: the project's packer, streaming and with loss masks carried token by
token; TRL's `pack_dataset` needs a materialized `datasets.Dataset`, packs per map batch, and TRL
is only a dev dependency). The loss is the project's `NextTokenObjective` through `TorchLearner`:
on every token by default (the paper), or only on the thinking (`loss_on=thinking`, SFT-style).
With `thinking=false` the same trainer is the CPT baseline; `token_budget` fixes the number of
trained tokens, so two arms at one budget differ only in what the tokens are.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import OmegaConf

from rlpretrain.algorithms.objectives import NextTokenObjective
from rlpretrain.checks import require
from rlpretrain.data.documents import DATA_SOURCES, DataConfig, DataError, load_documents
from rlpretrain.data.packing import StreamPacker
from rlpretrain.methods.tpt.mixture import Mixture
from rlpretrain.models.device import module_device, to_device
from rlpretrain.seeding import derive_seed

log = logging.getLogger(__name__)
LOSS_ON = ("all", "thinking")


@dataclass
class NTPSourceConfig:
    """One source of a next-token mixture: a document dataset, optionally with a thinking column."""
    label: str = "data"
    weight: float = 1.0
    source: str = "hf"  # hf | synthetic_arithmetic | champ | humaneval | tpt (a tpt_generate output directory in `path`)
    path: Optional[str] = None
    data_name: Optional[str] = None  # datasets config name
    data_files: Optional[Any] = None
    split: str = "train"
    text_column: str = "text"
    thinking_column: Optional[str] = None  # default "thinking" for source=tpt, none otherwise
    num_docs: int = 2000  # synthetic only
    max_docs: Optional[int] = None
    seed: int = 0  # synthetic only: which corpus (offset from the run seed)


@dataclass
class NTPConfig:
    """method=ntp: next-token training on packed [document; thinking] samples: TPT, and with thinking off, CPT."""
    name: str = "ntp"
    sources: list[NTPSourceConfig] = field(default_factory=list)  # empty: `data` as one plain source
    weight_mode: str = "per_sample"  # per_sample: each document of a source weighs `weight` | proportion
    thinking: bool = True  # false: thinking columns are ignored (the continued-pretraining baseline)
    template: str = "{document}<think>{thinking}</think>"  # a sample with thinking; {document} alone without
    loss_on: str = "all"  # all | thinking (SFT-style: the thinking and the closing tag only)
    max_doc_tokens: Optional[int] = None  # truncate documents (on a token boundary) before joining
    seq_len: int = 8192
    batch_size: int = 512  # packed sequences per optimizer step
    token_budget: Optional[int] = None  # set: steps = ceil(budget / (batch_size * seq_len)); then trainer.max_steps may not be given
    packing: str = "wrap"  # wrap: concatenate and cut | no_split: samples start a sequence unless longer than it
    separator: str = "eos"  # after every sample: eos | none
    init: str = "pretrained"  # pretrained: model.name_or_path's weights | scratch: its architecture, fresh weights
    architecture: dict[str, Any] = field(default_factory=dict)  # config overrides for init=scratch
    eval_source: Optional[NTPSourceConfig] = None  # held-out documents (plain; loss on document tokens)
    eval_docs: int = 256
    eval_every: int = 0  # 0: only at the start and the end
    eval_dedup: bool = True  # drop held-out documents that also occur in a training source

    def __post_init__(self):
        require(self.token_budget is None or self.token_budget >= 1, "token_budget", ">= 1 or null (trainer.max_steps)",
                self.token_budget)
        require(self.eval_docs >= 0, "eval_docs", ">= 0", self.eval_docs)
        require(self.eval_every >= 0, "eval_every", ">= 0 (0: only at the start and the end)", self.eval_every)


# ---------------------------------------------------------------- sources

class Source:
    def __init__(self, label: str, weight: float, texts: list[str], thinking: list[str] | None):
        if thinking is not None and len(thinking) != len(texts):
            raise DataError(f"source '{label}': {len(texts)} documents but {len(thinking)} thinking rows")
        if not texts:
            raise DataError(f"source '{label}' is empty")
        self.label, self.weight, self.texts, self.thinking = label, weight, texts, thinking


def load_source(src, run_seed: int) -> Source:
    thinking_column = src.thinking_column or ("thinking" if src.source == "tpt" else None)
    if src.source == "synthetic_arithmetic":
        texts = DATA_SOURCES.get("synthetic_arithmetic")(DataConfig(num_docs=src.num_docs), run_seed + src.seed)
        rows = {"text": texts}
        text_column, thinking_column = "text", None
    elif src.source not in ("hf", "tpt") and src.source in DATA_SOURCES:  # champ, humaneval: their split
        rows = {"text": DATA_SOURCES.get(src.source)(src, run_seed)}
        text_column, thinking_column = "text", None
    else:
        rows = _load_rows(src)
        text_column = src.text_column
        for col in filter(None, (text_column, thinking_column)):
            if col not in rows:
                raise DataError(f"source '{src.label}' has no column '{col}'; columns: {sorted(rows)}")
    texts = rows[text_column]
    thinking = rows[thinking_column] if thinking_column else None
    if src.max_docs is not None:
        texts = texts[: src.max_docs]
        thinking = thinking[: src.max_docs] if thinking is not None else None
    keep = [i for i, t in enumerate(texts) if isinstance(t, str) and t]
    return Source(src.label, src.weight, [texts[i] for i in keep],
                  [thinking[i] or "" for i in keep] if thinking is not None else None)


def _load_rows(src) -> dict[str, list]:
    import datasets

    if not src.path:
        raise DataError(f"source '{src.label}' (source={src.source}) needs a path: set method.sources.<i>.path "
                        "(a tpt_generate output directory for source=tpt, a dataset for hf)")
    try:
        if src.source == "tpt":
            from rlpretrain.methods.tpt.generate import load_shards
            ds = load_shards(src.path)
        elif src.source == "hf":
            data_files = src.data_files
            if data_files is not None and not isinstance(data_files, (str, list, dict)):
                data_files = OmegaConf.to_container(data_files)
            ds = datasets.load_dataset(src.path, src.data_name, data_files=data_files, split=src.split)
        else:
            raise DataError(f"unknown source type '{src.source}' (hf | synthetic_arithmetic | tpt)")
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"could not load source '{src.label}' ({src.path}): {type(e).__name__}: {e}") from e
    return {c: ds[c] for c in ds.column_names}


def load_sources(cfg, ntp) -> list[Source]:
    if not ntp.sources:  # the run's `data` group as one plain source
        return [Source(cfg.data.path or cfg.data.source, 1.0, load_documents(cfg.data, cfg.seed), None)]
    for i, src in enumerate(ntp.sources):
        if OmegaConf.is_config(src) and OmegaConf.is_missing(src, "path"):
            raise DataError(f"method.sources.{i}.path is not set (source '{src.label}'): give a tpt_generate output "
                            f"directory or a dataset, e.g. method.sources.{i}.path=thinking/{src.label}")
    return [load_source(s, cfg.seed) for s in ntp.sources]


# ---------------------------------------------------------------- samples

class SampleBuilder:
    """(document, thinking) -> (token ids, loss mask), each template piece tokenized on its own."""

    def __init__(self, tokenizer, template: str, loss_on: str = "all", max_doc_tokens: int | None = None):
        if loss_on not in LOSS_ON:
            raise ValueError(f"method.loss_on must be one of {LOSS_ON}, got '{loss_on}'")
        self.tokenizer, self.loss_on, self.max_doc_tokens = tokenizer, loss_on, max_doc_tokens
        self.pieces: list[tuple[str, list[int] | None]] = []
        for literal, fieldname, spec, conv in string.Formatter().parse(template):
            if literal:
                self.pieces.append(("literal", self._tok(literal)))
            if fieldname is not None:
                if fieldname not in ("document", "thinking") or spec or conv:
                    raise ValueError(f"method.template may use only {{document}} and {{thinking}}, got '{template}'")
                self.pieces.append((fieldname, None))
        names = [p[0] for p in self.pieces]
        if names.count("document") != 1 or names.count("thinking") != 1 or names.index("document") > names.index("thinking"):
            raise ValueError(f"method.template needs {{document}} then {{thinking}}, once each; got '{template}'")

    def _tok(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def __call__(self, document: str, thinking: str | None) -> tuple[list[int], list[int]]:
        doc = self._tok(document)[: self.max_doc_tokens]
        if thinking is None:
            return doc, [1 if self.loss_on == "all" else 0] * len(doc)
        ids, mask, response = [], [], False
        for kind, piece in self.pieces:
            if kind == "thinking":
                response = True
            tokens = doc if kind == "document" else self._tok(thinking) if kind == "thinking" else piece
            ids.extend(tokens)
            mask.extend([1 if self.loss_on == "all" or response else 0] * len(tokens))
        return ids, mask


class PackedStream:
    """Mixture -> samples -> packed sequences; the state (mixture, packer, ready sequences) resumes exactly."""

    def __init__(self, sources: list[Source], builder: SampleBuilder, mixture: Mixture, packer: StreamPacker,
                 thinking: bool):
        self.sources, self.builder, self.mixture, self.packer, self.thinking = sources, builder, mixture, packer, thinking
        self.ready: list[dict] = []
        self.counts = {"samples": [0] * len(sources), "doc_tokens": 0, "sample_tokens": 0}

    def next_batch(self, n: int) -> dict[str, torch.Tensor]:
        while len(self.ready) < n:
            s, d = self.mixture.next()
            src = self.sources[s]
            thinking = src.thinking[d] if self.thinking and src.thinking is not None else None
            ids, mask = self.builder(src.texts[d], thinking)
            self.counts["samples"][s] += 1
            self.counts["sample_tokens"] += len(ids)
            self.counts["doc_tokens"] += len(self.builder(src.texts[d], None)[0]) if thinking is not None else len(ids)
            self.ready.extend(self.packer.add(ids, mask))
        rows, self.ready = self.ready[:n], self.ready[n:]
        return {k: torch.tensor([r[k] for r in rows], dtype=torch.long) for k in ("input_ids", "attention_mask", "loss_mask")}

    def state_dict(self) -> dict:
        return {"mixture": self.mixture.state_dict(), "packer": self.packer.state_dict(), "ready": copy.deepcopy(self.ready),
                "counts": copy.deepcopy(self.counts)}

    def load_state_dict(self, state: dict) -> None:
        self.mixture.load_state_dict(state["mixture"])
        self.packer.load_state_dict(state["packer"])
        self.ready, self.counts = copy.deepcopy(state["ready"]), copy.deepcopy(state["counts"])


class _CheckpointState:
    """Adapts the stream to rlpretrain.checkpoint's `method` slot (state, no extra models)."""

    def __init__(self, stream: PackedStream):
        self.stream = stream

    def state_dict(self) -> dict:
        return self.stream.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.stream.load_state_dict(state)

    def save_models(self, directory) -> None:
        pass

    def load_models(self, directory) -> None:
        pass


# ---------------------------------------------------------------- model

def load_model(cfg, ntp, device):
    """`pretrained`: model.name_or_path's weights (mid-training). `scratch`: its config with
    `method.architecture` overrides, fresh weights (seeded), its tokenizer."""
    from rlpretrain.models.loading import DTYPES, load_model_and_tokenizer, resolve_model_path

    if ntp.init == "pretrained":
        return load_model_and_tokenizer(cfg.model, device)
    if ntp.init != "scratch":
        raise ValueError(f"method.init must be pretrained or scratch, got '{ntp.init}'")
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from rlpretrain.models.special_tokens import ensure_think_tokens

    from rlpretrain.models.loading import ModelLoadError

    path = resolve_model_path(cfg.model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=cfg.model.trust_remote_code)
        config = AutoConfig.from_pretrained(path, trust_remote_code=cfg.model.trust_remote_code)
    except OSError as e:
        raise ModelLoadError(f"cannot load the tokenizer/config of model.name_or_path '{cfg.model.name_or_path}' "
                             f"(method.init=scratch uses its architecture): {e}") from e
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    for key, value in OmegaConf.to_container(OmegaConf.create(dict(ntp.architecture))).items():
        setattr(config, key, value)
    torch.manual_seed(derive_seed(cfg.seed, 0, "ntp_init"))
    model = AutoModelForCausalLM.from_config(config, dtype=DTYPES[cfg.model.dtype],
                                             trust_remote_code=cfg.model.trust_remote_code)
    if cfg.model.add_think_tokens:
        ensure_think_tokens(tokenizer, model)
    return tokenizer, model.to(device)


# ---------------------------------------------------------------- evaluation

@torch.no_grad()
def heldout_loss(model, docs: list[list[int]], bos: int, batch_rows: int = 32) -> float:
    """Token-mean next-token loss on the documents' own tokens, each document after `bos` (as in training,
    where a document follows a separator); nothing else is scored."""
    from rlpretrain.learner.microbatch import pad_right

    objective = NextTokenObjective()
    was_training = model.training
    model.eval()
    device = module_device(model)
    num, den = 0.0, 0.0
    for start in range(0, len(docs), batch_rows):
        rows = [[bos] + d for d in docs[start:start + batch_rows]]
        ids = pad_right(rows, bos)
        attn = pad_right([[1] * len(r) for r in rows], 0)
        micro = to_device({"input_ids": ids, "attention_mask": attn,
                           "loss_mask": attn * (torch.arange(ids.shape[1]) > 0)}, device)
        n, _ = objective.numerator(model, micro)
        num += float(n)
        den += objective.denominator(micro)
    if was_training:
        model.train()
    return num / max(den, 1.0)


def eval_docs(cfg, ntp, tokenizer, sources: list[Source]) -> list[list[int]]:
    if ntp.eval_source is None or ntp.eval_docs <= 0:
        return []
    texts = load_source(ntp.eval_source, cfg.seed).texts
    if ntp.eval_dedup:
        seen = {t for s in sources for t in s.texts}
        texts = [t for t in texts if t not in seen]
    if not texts:
        raise DataError("no held-out documents left after removing those in the training sources")
    cap = ntp.seq_len - 1
    return [ids[:cap] for ids in tokenizer(texts[: ntp.eval_docs], add_special_tokens=False)["input_ids"] if ids]


# ---------------------------------------------------------------- training

def num_steps(cfg, ntp) -> int:
    if ntp.token_budget:
        return math.ceil(ntp.token_budget / (ntp.batch_size * ntp.seq_len))
    return cfg.trainer.max_steps


def train_ntp(cfg, ntp=None, run_dir: str | Path | None = None, *, placer) -> dict:
    """Train (or resume with cfg.resume) one next-token run; returns the summary (also summary.json).
    `ntp` (default cfg.method) and `run_dir` (default cfg.run_dir): a sub-run of a pipeline.
    `placer` (rlpretrain/launch/: local or Ray) puts the learner."""
    from rlpretrain.models.loading import pick_device
    from rlpretrain.run import Run
    from rlpretrain.tracking import read_metrics

    ntp = ntp if ntp is not None else cfg.method
    if ntp.separator not in ("eos", "none"):
        raise ValueError(f"method.separator must be eos or none, got '{ntp.separator}'")
    if ntp.seq_len < 2 or ntp.batch_size < 1:
        raise ValueError("method.seq_len must be >= 2 and method.batch_size >= 1")
    run = Run(cfg, run_dir, desc=f"{cfg.experiment_name} ntp", record=sub_run_record(cfg, ntp, run_dir))
    device = pick_device(cfg.device)
    sources = load_sources(cfg, ntp)  # before the model: a data mistake fails fast
    tokenizer, model = load_model(cfg, ntp, device)
    if ntp.thinking and not any(s.thinking is not None for s in sources):
        log.warning("method.thinking=true but no source has a thinking column: training on documents only")
    if ntp.loss_on == "thinking" and not (ntp.thinking and any(s.thinking is not None for s in sources)):
        raise ValueError("method.loss_on=thinking needs thinking on and a source with a thinking column")
    builder = SampleBuilder(tokenizer, ntp.template, ntp.loss_on, ntp.max_doc_tokens)
    mixture = Mixture([len(s.texts) for s in sources], [s.weight for s in sources],
                      seed=derive_seed(cfg.seed, 0, "ntp_mixture"), mode=ntp.weight_mode)
    separator = tokenizer.eos_token_id if ntp.separator == "eos" else None
    packer = StreamPacker(ntp.seq_len, separator, ntp.packing, tokenizer.pad_token_id)
    stream = PackedStream(sources, builder, mixture, packer, ntp.thinking)
    steps = num_steps(cfg, ntp)
    learner = placer.learner(cfg, model, steps, run.dir)
    objective = NextTokenObjective()
    heldout = eval_docs(cfg, ntp, tokenizer, sources)
    bos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.pad_token_id

    start = run.resume(tokenizer, learner, _CheckpointState(stream))
    first_eval = None
    if heldout and start == 0:
        first_eval = heldout_loss(model, heldout, bos)
        run.log(0, {"eval_loss": first_eval}, {})
    tokens_per_step = ntp.batch_size * ntp.seq_len
    try:
        for step in run.steps(steps):
            t0 = time.perf_counter()
            batch = stream.next_batch(ntp.batch_size)
            stats = learner.train_step(batch, objective)  # the learner moves each micro-batch to the model
            seconds = time.perf_counter() - t0
            metrics = {**stats, "tokens": int(batch["attention_mask"].sum()),
                       "loss_tokens": int(batch["loss_mask"][:, 1:].sum()),
                       "tokens_total": (step + 1) * tokens_per_step, "samples_seen": sum(stream.counts["samples"]),
                       "doc_tokens_seen": stream.counts["doc_tokens"], "sample_tokens_seen": stream.counts["sample_tokens"]}
            if heldout and ntp.eval_every and (step + 1) % ntp.eval_every == 0 and step + 1 != steps:
                metrics["eval_loss"] = heldout_loss(model, heldout, bos)
            if heldout and step + 1 == steps:
                metrics["eval_loss"] = heldout_loss(model, heldout, bos)
            run.log(step + 1, metrics, {"time/step": seconds, "tokens_per_s": metrics["tokens"] / seconds},
                    loss=f"{stats.get('ntp_loss', float('nan')):.3f}", tok_s=f"{metrics['tokens'] / seconds:.0f}")
            run.end_step(step + 1)
    finally:
        run.close()
    evals = [m["eval_loss"] for m in read_metrics(run.dir) if "eval_loss" in m]
    losses = [m["ntp_loss"] for m in read_metrics(run.dir) if "ntp_loss" in m]
    summary = {
        "run_dir": str(run.dir), "steps": steps, "thinking": bool(ntp.thinking), "tokens_trained": steps * tokens_per_step,
        "train_loss_last": losses[-1] if losses else None, "eval_loss_first": evals[0] if evals else first_eval,
        "eval_loss_last": evals[-1] if evals else None, "heldout_docs": len(heldout),
        "samples_per_source": dict(zip([s.label for s in sources], stream.counts["samples"])),
        "doc_tokens_seen": stream.counts["doc_tokens"], "sample_tokens_seen": stream.counts["sample_tokens"],
        "wall_seconds": round(run.seconds, 1),
    }
    (run.dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def sub_run_record(cfg, ntp, run_dir) -> dict | None:
    """A pipeline arm's run.yaml: the run's config with this arm's next-token settings as its method,
    so that the tools read the arm as the ntp run it is. None for a plain run (cfg itself)."""
    if run_dir is None:
        return None
    config = OmegaConf.to_container(cfg, resolve=True)
    config["method"] = OmegaConf.to_container(OmegaConf.create(ntp), resolve=True) if OmegaConf.is_config(ntp) else ntp
    config["run_dir"] = str(run_dir)
    return config


def format_summary(name: str, s: dict) -> str:
    ev = f", held-out loss {s['eval_loss_first']:.4f} -> {s['eval_loss_last']:.4f}" if s["eval_loss_last"] is not None else ""
    return (f"{name}: {s['steps']} steps, {s['tokens_trained']} tokens ({s['doc_tokens_seen']} document tokens), "
            f"train loss {s['train_loss_last']:.4f}{ev}  [{s['wall_seconds']:.0f} s, {s['run_dir']}]")

