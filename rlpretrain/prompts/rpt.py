"""RPT's prompt templates (arXiv 2506.08007 §3.2 and its appendix list of templates), by name.

We do not have the paper's exact wording. Every template here is written by us:

- ``v0`` follows the paper's description of its training template (v0) point by point: complete
  the text under ``### Context`` by predicting the next token, reason step by step, put the final
  answer in ``\\boxed{}``, the token may begin with a space (``\\boxed{ para}``), no ``\\text{}``;
  then ``### Context`` and the context. A paraphrase, not the original text.
- ``candidates`` is our paraphrase of the idea behind the paper's alternative templates (weigh
  several candidate next tokens before committing); not one of the paper's six texts.
- ``concise`` is ours: the shortest instruction that still states the answer format.

The response format is ``<think> … </think>`` then ``\\boxed{prediction}``. The prompt ends so the
model starts inside the thought: with ``<think>`` after the tokenizer's chat template when it has
one (R1-distilled models' templates already end with it), or after the plain text otherwise.
"""

from __future__ import annotations

_FORMAT_NOTE = (
    "Put your final answer within \\boxed{}. The next token may begin with a space; if it does, keep "
    "the space inside the box, e.g. \\boxed{ para}. Do not use \\text{} in the box."
)

TEMPLATES: dict[str, str] = {
    "v0": (
        "Complete the given text under ### Context by predicting the next token. Reason step by step "
        "about what comes next, then give your prediction. " + _FORMAT_NOTE + "\n\n### Context\n{context}"
    ),
    "candidates": (
        "Predict the next token of the text under ### Context. First list a few plausible next tokens, "
        "think step by step about which one is the most likely, then choose one. " + _FORMAT_NOTE
        + "\n\n### Context\n{context}"
    ),
    "concise": "Predict the next token of the text below. Answer in \\boxed{}.\n\n### Context\n{context}",
}
PARAPHRASED = {"v0": "paraphrase of the paper's v0 description", "candidates": "ours, after the paper's idea",
               "concise": "ours"}


def render_user_message(template: str, context: str) -> str:
    if template not in TEMPLATES:
        raise ValueError(f"unknown RPT template '{template}'; available: {', '.join(TEMPLATES)}")
    return TEMPLATES[template].replace("{context}", context)


def build_prompt(tokenizer, template: str, context: str, think_open: str = "<think>") -> str:
    """The full prompt text: chat-formatted when the tokenizer has a chat template; ends with `think_open`."""
    message = render_user_message(template, context)
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template([{"role": "user", "content": message}], tokenize=False,
                                             add_generation_prompt=True)
        if not text.rstrip().endswith(think_open):
            text = text + think_open + "\n"
        return text
    return message + "\n\n" + think_open
