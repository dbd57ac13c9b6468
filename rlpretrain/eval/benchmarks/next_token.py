"""RPT's next-token accuracy (arXiv 2506.08007, Table 1) as a suite benchmark: `next_token`.

An example is one held-out token position, read from a positions file as the rpt job's evaluation
writes it (RUN_DIR/eval/positions.json); the documents, the entropy thresholds and the RPT settings
(prompt template, thought tags, target_tokens, max_context) are that run's (RUN_DIR/run.yaml), so the
suite scores the same positions as the run's own evaluation and `rlpretrain-eval`. Each position's data
sources are the nested entropy splits it falls in (easy H > 0.5 ⊇ medium > 1.0 ⊇ hard > 1.5), so
results.json's `by_source` holds Table 1's columns.

Templates, as the paper's two modes; both score a position with the functions the old path uses
(rlpretrain/eval/next_token_accuracy.py):

- `standard`: the context's exact token ids; the greedy next token (max_new_tokens 1, temperature 0)
  is compared by id with the gold token (grader `next_token`).
- `reasoning`: the RPT prompt (rlpretrain/prompts/rpt.py, the run's template; it applies the chat
  template itself, so the suite's `chat` stays false), a sampled `<think> … </think> \\boxed{y}`
  response, y's prefix-match reward (rewards/prefix_match.py; grader `prefix_match`). Its sampling
  (temperature, max_new_tokens, samples) is the suite entry's, not the run's evaluation settings:
  set them to the run's to compare with its own evaluation.
"""

from __future__ import annotations

from pathlib import Path

from rlpretrain.eval.benchmarks.base import BENCHMARKS, Benchmark, DatasetSpec, Example
from rlpretrain.eval.next_token_accuracy import (EvalItem, EvalOptions, context_ids, heldout_docs, is_rpt_run,
                                                 options_from_cfg, read_positions, reasoning_prediction,
                                                 reasoning_prompt, splits_of, target_bytes)

GRADER_OF = {"standard": "next_token", "reasoning": "prefix_match"}


@BENCHMARKS.register("next_token")
class NextToken(Benchmark):
    name = "next_token"
    dataset = DatasetSpec("local: an RPT run's eval/positions.json (its held-out documents)", split="positions")
    grader = "next_token"
    default_template = "standard"
    templates = tuple(GRADER_OF)

    def __init__(self) -> None:
        self.tokenizer = None
        self.opts = EvalOptions()
        self.docs: list[list[int]] = []

    def use_tokenizer(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def grader_for(self, template: str) -> str:
        self._check(template)
        return GRADER_OF[template]

    def load(self, local_path: str | None = None, limit: int | None = None) -> list[Example]:
        from rlpretrain.run import load_run_config

        if self.tokenizer is None:
            raise ValueError("benchmark 'next_token': its examples are token positions; call use_tokenizer(tokenizer) "
                             "before load (the suite does)")
        if not local_path:
            raise ValueError("benchmark 'next_token' has no hub dataset: set local_path to an RPT run's "
                             "eval/positions.json (the rpt job writes it with method.eval.before or after)")
        path = Path(local_path)
        items = read_positions(path)
        run_dir = path.parent.parent
        run_cfg = load_run_config(run_dir)
        if not is_rpt_run(run_cfg):
            raise ValueError(f"{path}: positions index the held-out documents of the RPT run that chose them, and "
                             f"{run_dir} holds no RPT run (run.yaml)")
        self.opts = options_from_cfg(run_cfg)
        self.docs = heldout_docs(run_cfg, self.tokenizer)
        outside = [it for it in items if it.doc >= len(self.docs) or not 0 < it.position < len(self.docs[it.doc])]
        if outside:
            raise ValueError(f"{path}: {outside[0]} lies outside the run's {len(self.docs)} held-out documents as this "
                             "tokenizer reads them; evaluate a model with the run's tokenizer")
        return [self._example(it) for it in (items[:limit] if limit else items)]

    def _example(self, item: EvalItem) -> Example:
        return Example(id=f"{item.doc}:{item.position}",
                       question=self.tokenizer.decode(context_ids(self.docs, item, self.opts)),
                       answer=self.docs[item.doc][item.position],
                       meta={"source": splits_of(item.entropy, self.opts.thresholds), "item": item,
                             "target_bytes": target_bytes(self.tokenizer, self.docs, item, self.opts)})

    def prompt(self, example: Example, template: str, shots: int) -> str | list[int]:
        self._check(template)
        if shots:
            raise ValueError(f"benchmark 'next_token' is zero-shot, got shots={shots}")
        item = example.meta["item"]
        if template == "standard":
            return context_ids(self.docs, item, self.opts)
        return reasoning_prompt(self.tokenizer, self.docs, item, self.opts)

    def extract(self, completion: str, template: str | None = None) -> str | None:
        raise ValueError("benchmark 'next_token' reads its answers from the sample's token ids: use extract_sample")

    def extract_sample(self, completion: str, token_ids: list[int], template: str | None = None) -> str | None:
        """standard: the first generated token's id; reasoning: the boxed prediction after the thought,
        read from the response decoded with its special tokens (as the rpt job reads it)."""
        template = template or self.default_template
        self._check(template)
        if template == "standard":
            return str(token_ids[0]) if token_ids else None
        return reasoning_prediction(self.tokenizer, token_ids, self.opts)[1]

    def _check(self, template: str) -> None:
        if template not in GRADER_OF:
            raise ValueError(f"benchmark 'next_token' has no template '{template}'; available: {', '.join(GRADER_OF)}")
