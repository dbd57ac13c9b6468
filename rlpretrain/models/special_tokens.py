"""The special tokens every method relies on, and making sure a tokenizer has them."""

from __future__ import annotations

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
EOS = "<|endoftext|>"
PAD = "<pad>"


THINK_TOKEN_INITS = ("pieces", "mean")


def ensure_think_tokens(tokenizer, model, open_tag: str = THINK_OPEN, close_tag: str = THINK_CLOSE,
                        init: str = "pieces") -> int:
    """Add the thought delimiters as special tokens if missing; resize embeddings. Returns #added.

    A new token's input (and, if untied, output) embedding starts as, with `init=pieces`, the mean
    of the embeddings of the pieces its tag tokenized into before it was added (so `<think>` starts
    near what the model reads for "<", "think", ">"); with `init=mean`, the mean of all embeddings.
    """
    import torch

    if init not in THINK_TOKEN_INITS:
        raise ValueError(f"model.think_token_init must be one of {list(THINK_TOKEN_INITS)}, got '{init}'")
    vocab = tokenizer.get_vocab()
    missing = [t for t in (open_tag, close_tag) if t not in vocab]
    if not missing:
        return 0
    pieces = {t: tokenizer(t, add_special_tokens=False)["input_ids"] for t in missing}
    tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
    old_rows = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # rows set below
    tables = [model.get_input_embeddings().weight]
    out = model.get_output_embeddings()
    if out is not None and out.weight.data_ptr() != tables[0].data_ptr():
        tables.append(out.weight)
    with torch.no_grad():
        for table in tables:
            for tag in missing:
                source = table[pieces[tag]] if init == "pieces" else table[:old_rows]
                table[tokenizer.convert_tokens_to_ids(tag)] = source.mean(dim=0)
    return len(missing)


def single_token_id(tokenizer, text: str) -> int:
    ids = tokenizer.convert_tokens_to_ids(text)
    if ids is None or ids == tokenizer.unk_token_id:
        raise ValueError(f"'{text}' is not a single token of this tokenizer")
    return ids
