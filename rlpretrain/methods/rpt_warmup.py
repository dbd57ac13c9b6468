"""Optional format warm-up for RPT's starting model (method.format_warmup.steps > 0; off by default).

The embedded tiny model has never seen RPT's prompt or ``\\boxed{}``, so its reasoning-mode
accuracy is ~0 and every reward is 0 (GRPO then has nothing to learn from). This warm-up gives it
the response format with a few next-token steps on RPT-formatted examples:

    <prompt(template, context)> <think> THOUGHT </think>\\boxed{x_t}<eos>

with the loss on the response only. The answer is always the true next token x_t. On arithmetic
contexts that end inside a sum ("a + b =" or "a + b = 1"), THOUGHT is, with probability
`useful_prob`, the digit-wise computation of a + b (the embedded build's useful thoughts), else a
filler ("ok ."); elsewhere it is a filler. So, as for RLP, the warmed model writes both useful and
useless thoughts and RL has to find out which help. The examples come from a corpus seeded apart
from the training and evaluation documents. The result is cached like the embedded model.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

from omegaconf import OmegaConf
from tqdm import tqdm

from rlpretrain.data.synthetic import FILLER_THOUGHTS, _digitwise_thought, arithmetic_corpus
from rlpretrain.prompts.rpt import build_prompt
from rlpretrain.models.build_cache import build_once, cache_root
from rlpretrain.models.embedded import BUILD_VERSION

SUM_AT_END = re.compile(r"(\d+) \+ (\d+) =\s*(\d*)$")
WARMUP_VERSION = 2  # bump when the warm-up's recipe or its numbers change (2: fused AdamW)


def thought_for(context_text: str, rng: random.Random, useful_prob: float) -> str:
    match = SUM_AT_END.search(context_text)
    if match and rng.random() < useful_prob:
        return _digitwise_thought(int(match.group(1)), int(match.group(2)))
    return rng.choice(FILLER_THOUGHTS)


def format_examples(tokenizer, texts: list[str], cfg, n: int, seed: int) -> list[tuple[list[int], int]]:
    """n (token ids, response start) pairs."""
    m, w = cfg.method, cfg.method.format_warmup
    rng = random.Random(seed)
    docs = [d for d in tokenizer(texts, add_special_tokens=False)["input_ids"] if len(d) > m.min_context]
    close_ids = tokenizer(m.think_close, add_special_tokens=False)["input_ids"]
    out = []
    while len(out) < n:
        doc = rng.choice(docs)
        t = rng.randrange(m.min_context, len(doc))
        ctx = doc[max(0, t - m.max_context):t]
        context_text = tokenizer.decode(ctx)
        prompt = tokenizer(build_prompt(tokenizer, m.template, context_text, m.think_open), add_special_tokens=False)["input_ids"]
        thought = tokenizer(" " + thought_for(context_text, rng, w.useful_prob) + " ", add_special_tokens=False)["input_ids"]
        answer = tokenizer("\\boxed{" + tokenizer.decode(doc[t:t + 1]) + "}", add_special_tokens=False)["input_ids"]
        out.append((prompt + thought + close_ids + answer + [tokenizer.eos_token_id], len(prompt)))
    return out


def warmup_key(cfg, base: str) -> str:
    m = cfg.method
    parts = {"base": base, "embedded": OmegaConf.to_container(cfg.model.embedded, resolve=True),
             "warmup": OmegaConf.to_container(m.format_warmup, resolve=True), "template": m.template,
             "min_context": m.min_context, "max_context": m.max_context, "think": [m.think_open, m.think_close],
             "data": OmegaConf.to_container(cfg.data, resolve=True), "v": WARMUP_VERSION,
             "embedded_build": BUILD_VERSION}  # a rebuilt base model invalidates the warm-up built on it
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def ensure_format_warmup(cfg) -> Path:
    """The warmed model's directory (built on first use, cached, safe against concurrent builders)."""
    target = cache_root(cfg.model) / f"rpt-format-{warmup_key(cfg, cfg.model.name_or_path)}"
    return build_once(target, lambda out: build_format_warmup(cfg, out))


def build_format_warmup(cfg, out_dir: Path) -> list[float]:
    from rlpretrain.algorithms.next_token_trainer import train_next_token, warmup_learner_config
    from rlpretrain.data.documents import load_documents, split_holdout
    from rlpretrain.models.loading import load_model_and_tokenizer, pick_device

    w = cfg.method.format_warmup
    tokenizer, model = load_model_and_tokenizer(cfg.model, pick_device(cfg.device))
    if cfg.data.source == "synthetic_arithmetic":  # a corpus of its own, apart from training and evaluation
        texts = arithmetic_corpus(max(200, w.examples // 4), seed=30_000 + cfg.seed, think_prob=0.0)
    else:
        texts, _ = split_holdout(load_documents(cfg.data, cfg.seed), cfg.method.eval.holdout_docs)
    examples = format_examples(tokenizer, texts, cfg, w.examples, seed=cfg.seed)
    learner_cfg = warmup_learner_config(w.lr, w.steps, weight_decay=0.0,
                                        max_tokens_per_micro_batch=cfg.learner.max_tokens_per_micro_batch,
                                        micro_batch_min_fill=cfg.learner.micro_batch_min_fill)
    with tqdm(total=w.steps, desc="RPT format warm-up", unit="step", dynamic_ncols=True,
              disable=not cfg.tracking.progress) as bar:
        losses = train_next_token(model, examples, learner_cfg, w.steps, w.batch_size, tokenizer.pad_token_id,
                                  seed=cfg.seed, on_step=lambda loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.3f}")))
    out_dir.mkdir(parents=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "rpt_format_warmup.json").write_text(json.dumps({
        "base": cfg.model.name_or_path, "steps": w.steps, "loss_first": losses[0], "loss_last": losses[-1]}, indent=2))
    return losses
