"""The embedded default model: a tiny Llama and a byte-level BPE tokenizer, built locally.

Nothing is downloaded. The tokenizer is trained on the project's own arithmetic corpus with
digits split one per token and <think>/</think> as special tokens; the model gets a short
next-token warm-up on that corpus (algorithms/next_token_trainer.py: the project's own learner
and next-token loss), so that RLP starts from a policy that can already write both useful and
useless thoughts.
The result is saved in Hugging Face format under a cache directory keyed by the build settings,
so later runs load it with `from_pretrained` like any other model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from rlpretrain.models.build_cache import build_once, default_cache_dir
from rlpretrain.models.special_tokens import EOS, PAD, THINK_CLOSE, THINK_OPEN

BUILD_VERSION = 3  # bump when the build recipe changes, so stale caches are not reused (3: fused AdamW)


@dataclass
class EmbeddedModelConfig:
    """The tiny model built locally when model.name_or_path starts with 'embedded:' (`model.embedded`)."""
    hidden_size: int = 64
    num_layers: int = 4
    num_heads: int = 2  # head size 32: vLLM's CPU attention rejects smaller heads
    intermediate_size: int = 256
    max_position_embeddings: int = 512
    vocab_size: int = 320
    corpus_docs: int = 4000
    think_prob: float = 0.5   # fraction of sums preceded by a thought in the warm-up corpus
    useful_prob: float = 0.5  # of those thoughts, the fraction that are digit-wise computations
    warmup_steps: int = 400
    warmup_lr: float = 3e-3
    warmup_batch_size: int = 32
    seed: int = 1234


def ensure_embedded_model(name: str, cfg, cache_dir: str | None = None) -> Path:
    """Path of the built model, building it on first use (safe against concurrent builders)."""
    if name != "tiny":
        raise ValueError(f"unknown embedded model 'embedded:{name}'; available: embedded:tiny")
    settings = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)
    key = hashlib.sha256(json.dumps({**settings, "v": BUILD_VERSION}, sort_keys=True).encode()).hexdigest()[:12]
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    return build_once(root / f"embedded-{name}-{key}", lambda out: build_tiny(settings, out))


def train_tokenizer(corpus: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    specials = [EOS, PAD, THINK_OPEN, THINK_CLOSE]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=PAD,
                                   additional_special_tokens=[THINK_OPEN, THINK_CLOSE])


def build_tiny(settings: dict, out_dir: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    from rlpretrain.algorithms.next_token_trainer import train_next_token, warmup_learner_config
    from rlpretrain.data.packing import pack_blocks
    from rlpretrain.data.synthetic import arithmetic_corpus

    s = settings
    started = time.time()
    corpus = arithmetic_corpus(s["corpus_docs"], s["seed"], s["think_prob"], s["useful_prob"])
    tokenizer = train_tokenizer(corpus, s["vocab_size"])
    torch.manual_seed(s["seed"])
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=s["hidden_size"], intermediate_size=s["intermediate_size"],
        num_hidden_layers=s["num_layers"], num_attention_heads=s["num_heads"], num_key_value_heads=s["num_heads"],
        max_position_embeddings=s["max_position_embeddings"], tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    docs = [tokenizer(d, add_special_tokens=False)["input_ids"] for d in corpus]
    blocks = pack_blocks(docs, block_size=128, separator=tokenizer.eos_token_id)
    random.Random(s["seed"]).shuffle(blocks)
    with tqdm(total=s["warmup_steps"], desc="building embedded:tiny (warm-up)", unit="step",
              dynamic_ncols=True, disable=None) as bar:
        steps = s["warmup_steps"]
        learner_cfg = warmup_learner_config(s["warmup_lr"], steps, weight_decay=0.01,
                                            max_tokens_per_micro_batch=1 << 30, micro_batch_min_fill=0.0)
        losses = train_next_token(model, [(b, 0) for b in blocks], learner_cfg, steps, s["warmup_batch_size"],
                                  tokenizer.pad_token_id,
                                  on_step=lambda loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.3f}")))
    out_dir.mkdir(parents=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "build_info.json").write_text(json.dumps({
        "settings": s, "build_version": BUILD_VERSION, "parameters": sum(p.numel() for p in model.parameters()),
        "warmup_loss_first": losses[0], "warmup_loss_last": losses[-1], "build_seconds": round(time.time() - started, 1),
    }, indent=2))
