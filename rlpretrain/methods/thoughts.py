"""Where a thought may end, and whether thoughts ended well.

A chat model writing after `<think>` often closes its turn instead of the thought (`<|im_end|>`)
and, left to run, invents the next turns. So a thought also stops at the model's end-of-turn and
end-of-text tokens; it is then scored as if closed. The share of thoughts that never wrote the
closing tag is a metric, and a run whose thoughts mostly ran to the length limit says so.
"""

from __future__ import annotations

import statistics

# end-of-turn/-text tokens of common chat vocabularies (ChatML/SmolLM2/Qwen, Llama 3, Gemma)
KNOWN_END_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "<end_of_turn>", "<eos>")
TRUNCATION_WARN_FRAC = 0.5


def thought_end_ids(tokenizer, names: list[str] | None) -> list[int]:
    """Token ids that end a thought besides the closing tag. `None`: for a chat model (a tokenizer with
    a chat template), its EOS and those of KNOWN_END_TOKENS it has; for a model without one, none (a
    base model's EOS ends a document, not a turn: the embedded model writes it inside thoughts).
    A list: exactly those, each of which must be one token (empty: none)."""
    vocab = tokenizer.get_vocab()
    if names is None:
        if not getattr(tokenizer, "chat_template", None):
            return []
        found = [vocab[t] for t in KNOWN_END_TOKENS if t in vocab]
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        return sorted(set(found + eos))
    missing = [t for t in names if t not in vocab]
    if missing:
        raise ValueError(f"method.thought_end_tokens: {missing} not single tokens of this tokenizer")
    return sorted({vocab[t] for t in names})


def unclosed_frac(completions: list[list[int]], close_id: int) -> float:
    """Share of thoughts that do not end with the closing tag (length limit, or an end token)."""
    return sum(c[-1:] != [close_id] for c in completions) / len(completions)


def length_limit_warning(truncated_fracs: list[float]) -> str | None:
    """A warning when, over the run, most thoughts hit the length limit (their rewards then judge cut-off text)."""
    if not truncated_fracs:
        return None
    mean = statistics.fmean(truncated_fracs)
    if mean <= TRUNCATION_WARN_FRAC:
        return None
    return (f"{mean:.0%} of thoughts ran to the length limit (rollout.max_new_tokens) without closing; "
            "raise it, or prompt the model to think briefly (method.thought_prompt=chat)")


# RLP v2 §10's instruction for the thought, paraphrased (shared/METHODS.md; its exact wording and the
# chat wrapping for a base model are not given in the paper)
RLP_SYSTEM_PROMPT = ("Think briefly between the <think> and </think> tags about what comes next, then continue "
                     "the text in the same style, without restating it and without meta commentary.")
THOUGHT_PROMPTS = ("none", "chat")


def thought_prompt_wrap(tokenizer, mode: str) -> tuple[list[int], list[int]]:
    """Token ids placed before and after a context so that the thought is written in the chat turn the
    model knows: (system prompt + user turn opening, user turn close + assistant opening). `none`: ([], [])."""
    if mode not in THOUGHT_PROMPTS:
        raise ValueError(f"method.thought_prompt must be one of {list(THOUGHT_PROMPTS)}, got '{mode}'")
    if mode == "none":
        return [], []
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("method.thought_prompt=chat needs a tokenizer with a chat template")
    marker = "\x00CONTEXT\x00"
    text = tokenizer.apply_chat_template([{"role": "system", "content": RLP_SYSTEM_PROMPT},
                                          {"role": "user", "content": marker}],
                                         tokenize=False, add_generation_prompt=True)
    before, after = text.split(marker)
    # the context's own token ids go between the two halves, untouched by re-tokenization
    return (tokenizer(before, add_special_tokens=False)["input_ids"],
            tokenizer(after, add_special_tokens=False)["input_ids"])
