"""TPT's thinking prompts (arXiv 2509.20186 v4: the method's prompt and the random-focus ablation), by name.

The paper publishes its prompt only as a figure; these are our own words, faithful to it:
the document, a line ``## End of the context``, then the instruction. A prompt is built from the
document's *tokens* (already truncated to the budget), so a focus marker always falls on a token
boundary and the document is never re-tokenized differently from what was counted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from rlpretrain.registry import Registry

END_OF_CONTEXT = "## End of the context"
FOCUS_MARKER = "<<<READING HERE>>>"

THINKING_INSTRUCTION = (
    "Simulate how an expert in this field would think while studying the context above. "
    "Write out the expert's in-depth thought process as they analyse it: concentrate on the parts "
    "that are complex, subtle or rich in information, and pass over trivial or obvious details. "
    "Wherever it helps, use the Feynman technique: explain the key ideas in simple terms, as if "
    "teaching them, check the understanding step by step, and work through any reasoning or "
    "calculation the context relies on."
)

RANDOM_FOCUS_INSTRUCTION = (
    f"The marker {FOCUS_MARKER} shows where a reader has reached in the context above. "
    "Simulate an expert's in-depth thoughts at that point: what the expert would be thinking to "
    "understand the text around the marker and to anticipate what comes next. Focus on the "
    "complex and informative aspects there, skip trivial details, and where it helps use the "
    "Feynman technique, explaining the ideas in simple terms and reasoning step by step."
)


SHORT_INSTRUCTION = "An expert's in-depth thoughts on the context, step by step:"


@dataclass
class BuiltPrompt:
    text: str             # the user message (before any chat template)
    focus_position: int   # token index of the focus marker in the document; -1 when none


PROMPTS: Registry = Registry("tpt prompt")


@PROMPTS.register("thinking")
def thinking_prompt(doc_ids: list[int], tokenizer, rng: random.Random) -> BuiltPrompt:
    document = tokenizer.decode(doc_ids)
    return BuiltPrompt(f"{document}\n\n{END_OF_CONTEXT}\n\n{THINKING_INSTRUCTION}", -1)


@PROMPTS.register("random_focus")
def random_focus_prompt(doc_ids: list[int], tokenizer, rng: random.Random) -> BuiltPrompt:
    pos = rng.randint(0, len(doc_ids))  # a token boundary: before token `pos` (len: at the end)
    document = tokenizer.decode(doc_ids[:pos]) + FOCUS_MARKER + tokenizer.decode(doc_ids[pos:])
    return BuiltPrompt(f"{document}\n\n{END_OF_CONTEXT}\n\n{RANDOM_FOCUS_INSTRUCTION}", pos)


@PROMPTS.register("thinking_short")
def thinking_short_prompt(doc_ids: list[int], tokenizer, rng: random.Random) -> BuiltPrompt:
    """The thinking prompt's layout with a one-line instruction: for tiny models with short contexts
    (the embedded model's byte-level tokenizer spends ~500 tokens on the full instruction). Not the paper's."""
    return BuiltPrompt(f"{tokenizer.decode(doc_ids)}\n\n{END_OF_CONTEXT}\n\n{SHORT_INSTRUCTION}", -1)


def render(prompt: BuiltPrompt, tokenizer, think_open: str | None, use_chat_template: bool = True) -> list[int]:
    """Token ids the generator continues: the chat template when the tokenizer has one, then `think_open`.

    Opening the thought ourselves makes every generator (base or chat, templated or not) start
    inside a thought; generation stops at the closing tag.
    """
    if use_chat_template and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt.text}], tokenize=False,
                                             add_generation_prompt=True)
    else:
        text = prompt.text + "\n\n"
    if think_open and not text.rstrip().endswith(think_open):
        text = text + think_open
    return tokenizer(text, add_special_tokens=False)["input_ids"]
