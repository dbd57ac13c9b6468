"""RPT's rewards (arXiv 2506.08007 §3): prefix matching, and the paper's two alternatives.

The policy answers a next-token question with ``<think> … </think>`` then ``\\boxed{prediction}``.

- ``prefix_match`` (the paper's reward): with ḡ the bytes of the ground-truth continuation x_≥t,
  ȳ the bytes of the prediction, l = len(ȳ) and L_gt the cumulative byte lengths of the
  ground-truth tokens, r = 1 if ȳ == ḡ[:l] and l ∈ L_gt, else 0. A prediction may span several
  tokens; it must end on a token boundary (" si" for " size" scores 0) and keep the leading space.
- ``first_token_match``: 1 if the prediction's bytes begin with the first ground-truth token's
  bytes (only the first token is judged; what follows it is ignored), else 0.
- ``next_token_prob`` (the dense alternative, model-based): P(y0 | x_<t), the probability the
  policy (teacher-forced, no reasoning) gives the first token y0 of the prediction. It is computed
  by the method with a TeacherForcedScorer and passed in as the column ``prediction_first_token_prob``;
  this function only reads it (0 for a format error). Our reading of the paper's one-line description.

Exact bytes. ``target_tokens`` may be ``bytes`` (exact) or ``str`` (UTF-8 encoded here). With a
byte-level BPE a token can hold part of a multi-byte character, and decoding it alone gives U+FFFD,
so the method passes each token's exact bytes, read from the byte-level vocabulary
(``token_bytes`` below); strings are for hand use and tokenizers whose tokens are whole characters.

No format reward: a response without ``</think>`` or without a complete box scores 0 and is
counted by the method (``format_error_frac``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional, Sequence, Union

from .registry import register_reward

TokenText = Union[str, bytes]
THINK_CLOSE = "</think>"
BOX = "\\boxed{"


# ---------------------------------------------------------------- extraction

def extract_boxed(completion: str, think_close: str = THINK_CLOSE) -> Optional[str]:
    """The full content of the last top-level ``\\boxed{…}`` after the last ``think_close``, verbatim.

    Nested braces are matched (``\\boxed{\\frac{1}{2}}`` -> ``\\frac{1}{2}``); a box nested inside
    another belongs to the outer one. None when there is no ``think_close``, no box after it, or
    the last box is not closed (a truncated response).
    """
    end_think = completion.rfind(think_close)
    if end_think < 0:
        return None
    text = completion[end_think + len(think_close):]
    found: Optional[str] = None
    i = text.find(BOX)
    while i >= 0:
        start = i + len(BOX)
        depth, j = 1, start
        while j < len(text) and depth:
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
            j += 1
        if depth:  # unclosed: this (last) box is incomplete
            return None
        found = text[start:j - 1]
        i = text.find(BOX, j)
    return found


# ---------------------------------------------------------------- the rewards, per sample

def _as_bytes(token: TokenText) -> bytes:
    return token if isinstance(token, bytes) else token.encode("utf-8")


def prefix_match_reward(prediction: Optional[str], target_tokens: Sequence[TokenText]) -> float:
    """1.0 if the prediction's UTF-8 bytes equal a prefix of the continuation's bytes that ends on a
    token boundary, else 0.0. Empty or missing prediction: 0.0."""
    if not prediction:
        return 0.0
    predicted = prediction.encode("utf-8")
    boundary, truth = 0, b""
    for token in target_tokens:
        piece = _as_bytes(token)
        truth += piece
        boundary += len(piece)
        if boundary == len(predicted):
            return 1.0 if truth == predicted else 0.0
        if boundary > len(predicted):
            return 0.0
    return 0.0  # longer than the continuation


def first_token_match_reward(prediction: Optional[str], target_tokens: Sequence[TokenText]) -> float:
    """1.0 if the prediction begins with the first ground-truth token (its bytes), else 0.0."""
    if not prediction or not target_tokens:
        return 0.0
    first = _as_bytes(target_tokens[0])
    return 1.0 if first and prediction.encode("utf-8").startswith(first) else 0.0


# ---------------------------------------------------------------- exact token bytes

@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: the byte-level BPE alphabet back to bytes."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def is_byte_level(tokenizer) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = getattr(backend, "decoder", None) if backend is not None else None
    return decoder is not None and "ByteLevel" in repr(decoder)


def token_bytes(tokenizer, ids: Sequence[int]) -> list[bytes]:
    """The exact bytes each token stands for.

    Byte-level BPE (GPT-2, Qwen, Llama-3, the embedded tokenizer): each vocabulary string is mapped
    back through the byte alphabet, so a token holding half of "é" gives that one byte. Special
    tokens give their text's UTF-8. Other tokenizers (e.g. SentencePiece): the difference between the
    UTF-8 of decoding ids[:i+1] and ids[:i] — exact whenever tokens cover whole characters.
    """
    ids = list(ids)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    if is_byte_level(tokenizer):
        table = _byte_decoder()
        out = []
        for i, piece in zip(ids, tokenizer.convert_ids_to_tokens(ids)):
            if i in special or i in added or any(ch not in table for ch in piece):
                out.append(tokenizer.decode([i], skip_special_tokens=False).encode("utf-8"))
            else:
                out.append(bytes(table[ch] for ch in piece))
        return out
    out, previous = [], b""
    for k in range(len(ids)):
        current = tokenizer.decode(ids[:k + 1], skip_special_tokens=False).encode("utf-8")
        out.append(current[len(previous):] if current.startswith(previous) else current)
        previous = current
    return out


# ---------------------------------------------------------------- registered (TRL signature)

def _predictions(completions, predictions):
    return predictions if predictions is not None else [extract_boxed(c) for c in completions]


@register_reward("prefix_match")
def prefix_match(prompts, completions, target_token_bytes, predictions=None, **_) -> list[float]:
    """RPT's reward. Columns: ``target_token_bytes`` (per sample, the continuation's token bytes);
    optional ``predictions`` (already extracted; else extracted here from the completion text)."""
    return [prefix_match_reward(p, t) for p, t in zip(_predictions(completions, predictions), target_token_bytes)]


@register_reward("first_token_match")
def first_token_match(prompts, completions, target_token_bytes, predictions=None, **_) -> list[float]:
    return [first_token_match_reward(p, t) for p, t in zip(_predictions(completions, predictions), target_token_bytes)]


@register_reward("next_token_prob")
def next_token_prob(prompts, completions, prediction_first_token_prob, **_) -> list[float]:
    """Dense reward P(y0 | x_<t), computed by the method (0 when there is no valid prediction)."""
    return [float(p) for p in prediction_first_token_prob]
