"""AZR's generations: one response per request and sample, written block by block when scaffolded.

A request names the blocks its response must hold, in order (a deduction proposal: ```python then
```input; an induction proposal: N ```input blocks then ```message; a solver: its answer block).
With `method.scaffold_blocks` the prompt opens the first block, each generation stops when the model
closes a block, and the next block's fence is written for it before the model goes on. A small
model thus never forgets a block; it still writes every block's content. The written fences are in
the response (`sampled` 0) but not trained on; each block may take up to `rollout.max_new_tokens`.
Without scaffolding a response is one generation.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlpretrain.methods.azr.prompting import Prompter
from rlpretrain.methods.azr.templates import Request
from rlpretrain.rollout.base import RolloutEngine
from rlpretrain.seeding import derive_seed


@dataclass
class Response:
    token_ids: list[int]
    logprobs: list[float]  # 0.0 where the scaffold wrote the token
    sampled: list[int]  # 1: the policy sampled the token; 0: a fence the scaffold wrote
    finish_reason: str
    text: str = ""  # the whole response (with the fence the prompt opened), filled in by generate()


def _closed_block(prompter: Prompter, token_ids: list[int], finish_reason: str) -> bool:
    """Did this generation end by closing its block (not by an end-of-turn token or the length limit)?"""
    if finish_reason != "stop" or not token_ids or token_ids[-1] in prompter.stop_ids:
        return False
    # generation stops at the first fence, so a fence anywhere in it is the one that closed the block
    return "```" in prompter.tokenizer.decode(token_ids, skip_special_tokens=False)


def generate(engine: RolloutEngine, prompter: Prompter, requests: list[Request], n: int, seed: int,
             temperature: float | None = None) -> list[tuple[list[int], list[Response]]]:
    """For each request, its prompt ids and `n` responses (at the rollout temperature unless given)."""
    if not requests:
        return []
    ids = [prompter.ids(r.prompt, r.blocks[0]) for r in requests]
    outs = engine.generate(ids, prompter.sampling(n, seed, temperature))
    responses = [[Response(list(c.token_ids), list(c.logprobs), [1] * len(c.token_ids), c.finish_reason) for c in cs]
                 for cs in outs]
    if prompter.scaffold_blocks:
        # responses whose last generation closed a block go on with the next block, one engine call per block
        going = [(i, resp) for i, resps in enumerate(responses) for resp in resps
                 if _closed_block(prompter, resp.token_ids, resp.finish_reason)]
        for k in range(1, max(len(r.blocks) for r in requests)):
            going = [(i, resp) for i, resp in going if k < len(requests[i].blocks)]
            if not going:
                break
            fences = [prompter.fence_ids(requests[i].blocks[k]) for i, _ in going]
            more = engine.generate([ids[i] + resp.token_ids + fence for (i, resp), fence in zip(going, fences)],
                                   prompter.sampling(1, derive_seed(seed, k, "azr-block"), temperature))
            for (_, resp), fence, (c,) in zip(going, fences, more):
                resp.token_ids += fence + list(c.token_ids)
                resp.logprobs += [0.0] * len(fence) + list(c.logprobs)
                resp.sampled += [0] * len(fence) + [1] * len(c.token_ids)
                resp.finish_reason = c.finish_reason
            going = [(i, resp) for (i, resp), (c,) in zip(going, more)
                     if _closed_block(prompter, list(c.token_ids), c.finish_reason)]
    for r, resps in zip(requests, responses):
        for resp in resps:
            resp.text = prompter.text(resp.token_ids, r.blocks[0])
    return list(zip(ids, responses))
