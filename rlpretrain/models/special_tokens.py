"""The special tokens every method relies on, and making sure a tokenizer has them."""

from __future__ import annotations

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
EOS = "<|endoftext|>"
PAD = "<pad>"


def ensure_think_tokens(tokenizer, model, open_tag: str = THINK_OPEN, close_tag: str = THINK_CLOSE) -> int:
    """Add the thought delimiters as special tokens if missing; resize embeddings. Returns #added."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in (open_tag, close_tag) if t not in vocab]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
        model.resize_token_embeddings(len(tokenizer))
    return len(missing)


def single_token_id(tokenizer, text: str) -> int:
    ids = tokenizer.convert_tokens_to_ids(text)
    if ids is None or ids == tokenizer.unk_token_id:
        raise ValueError(f"'{text}' is not a single token of this tokenizer")
    return ids
