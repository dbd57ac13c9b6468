"""The project's own corpus: arithmetic chains where thinking helps predict the next token.

A document is an arithmetic progression written as equations, e.g.
``37 + 45 = 82 . 82 + 45 = 127 . 127 + 45 = 172 .`` After the first line every operand can be
copied from earlier text, so the hard tokens are the digits of each sum: predicting them in one
pass needs the carries, while a thought that adds digit by digit (units first) makes them easy.

For the warm-up corpus some sums are preceded by a thought in exactly RLP's layout: inserted
between two tokens, the text going on unchanged after it (``= <think> ... </think>127``, the space
before the sum stays before the thought). Half are the digit-wise computation, half a filler. The warmed-up
policy therefore samples both kinds of thought, and RLP's information gain has to teach it which
one helps. This is a teaching corpus for a tiny model, not a claim about natural text.
"""

from __future__ import annotations

import random

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
FILLER_THOUGHTS = ("ok .", "let me see .", "hmm .")


def _digitwise_thought(a: int, b: int) -> str:
    """Units-first column addition, e.g. 82 + 45 -> '2 + 5 = 7 . 8 + 4 = 12'."""
    da, db = str(a)[::-1], str(b)[::-1]
    steps, carry = [], 0
    for i in range(max(len(da), len(db))):
        x = int(da[i]) if i < len(da) else 0
        y = int(db[i]) if i < len(db) else 0
        s = x + y + carry
        steps.append(f"{x} + {y}" + (" + 1" if carry else "") + f" = {s}")
        carry = s // 10
    return " . ".join(steps)


def arithmetic_document(rng: random.Random, think_prob: float = 0.0, useful_prob: float = 0.5,
                        max_value: int = 999) -> str:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    parts = []
    while a + b <= max_value and len(parts) < 8:
        answer = str(a + b)
        if rng.random() < think_prob:
            thought = _digitwise_thought(a, b) if rng.random() < useful_prob else rng.choice(FILLER_THOUGHTS)
            answer = f"{THINK_OPEN} {thought} {THINK_CLOSE}{answer}"
        parts.append(f"{a} + {b} = {answer} .")
        a = a + b
    return " ".join(parts)


def arithmetic_corpus(num_docs: int, seed: int, think_prob: float = 0.0, useful_prob: float = 0.5) -> list[str]:
    rng = random.Random(seed)
    return [arithmetic_document(rng, think_prob, useful_prob) for _ in range(num_docs)]
