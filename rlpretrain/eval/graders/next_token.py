"""RPT's next-token scores (arXiv 2506.08007, Table 1), for the `next_token` benchmark; each is the
function the rpt job's own evaluation scores with.

- `next_token`: the answer (a token id) equals the gold next token's id (next_token_accuracy.next_token_correct).
- `prefix_match`: RPT's reward on the boxed prediction: its bytes are a prefix of the continuation's
  that ends on a token boundary (rewards/prefix_match.py); the continuation is the example's
  `target_bytes`.
"""

from __future__ import annotations

from rlpretrain.eval.benchmarks.base import GRADERS, Example, Grader
from rlpretrain.eval.next_token_accuracy import next_token_correct
from rlpretrain.rewards.prefix_match import prefix_match_reward


@GRADERS.register("next_token")
class NextTokenGrader(Grader):
    name = "next_token"
    version = "1"

    def grade_batch(self, answers: list[str | None], examples: list[Example]) -> list[float]:
        return [0.0 if a is None else next_token_correct(int(a), ex.answer) for a, ex in zip(answers, examples, strict=True)]


@GRADERS.register("prefix_match")
class PrefixMatchGrader(Grader):
    name = "prefix_match"
    version = "1"

    def grade_batch(self, answers: list[str | None], examples: list[Example]) -> list[float]:
        return [prefix_match_reward(a, ex.meta["target_bytes"]) for a, ex in zip(answers, examples, strict=True)]
