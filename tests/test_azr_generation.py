"""AZR's block-by-block generation (method.scaffold_blocks) on SmolLM2-135M-Instruct: the fences it
writes are in the response but marked unsampled, and every sampled token's log-prob is the model's
own under the exact token sequence that is trained (so the continuation saw what the learner sees)."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import compose_cfg
from rlpretrain.methods.azr.generation import generate
from rlpretrain.methods.azr.parsing import parse_proposal, proposal_blocks
from rlpretrain.methods.azr.prompting import Prompter
from rlpretrain.methods.azr.tasks import seed_tasks
from rlpretrain.methods.azr.templates import Request, propose_prompt, solve_request
from rlpretrain.rollout.hf import HFEngine

pytestmark = pytest.mark.slow  # a 135M model on the CPU: ~30 s

TEMPERATURE = 0.7


@pytest.fixture(scope="module")
def scaffolded(smol, smol_cache):
    _, tokenizer, model = smol
    cfg = compose_cfg("experiment=azr_quickstart", f"model.cache_dir={smol_cache}", f"rollout.temperature={TEMPERATURE}",
                      "rollout.max_new_tokens=48")
    return cfg, Prompter.from_config(tokenizer, cfg), HFEngine(cfg.rollout, model, tokenizer)


def teacher_forced_logprobs(model, prompt: list[int], completion: list[int]) -> torch.Tensor:
    with torch.no_grad():
        logits = model(torch.tensor([prompt + completion])).logits[0, len(prompt) - 1:-1].float()
    return torch.log_softmax(logits / TEMPERATURE, -1).gather(1, torch.tensor(completion)[:, None])[:, 0]


def test_scaffold_writes_each_fence_and_trains_only_sampled_tokens(smol, scaffolded):
    _, tokenizer, model = smol
    cfg, prompter, engine = scaffolded
    assert "```" in prompter.stop_strings
    seed = seed_tasks()["deduction"]
    request = Request(propose_prompt("deduction", references=seed, banned=cfg.method.banned_modules),
                      proposal_blocks("deduction", 0))
    (prompt, responses), = generate(engine, prompter, [request], 6, seed=3)
    assert tokenizer.decode(prompt).endswith("```python\n")  # the prompt opens the first block
    two_blocks = 0
    for r in responses:
        assert len(r.token_ids) == len(r.logprobs) == len(r.sampled)
        written = [t for t, s in zip(r.token_ids, r.sampled) if not s]
        if written:  # the python block closed, so the scaffold opened the input block
            two_blocks += 1
            assert tokenizer.decode(written) == "\n```input\n"
            assert r.text.startswith("```python\n") and "```\n```input\n" in r.text.replace("```\n\n```", "```\n```")
        else:
            assert "```input" not in r.text
        sampled = torch.tensor(r.sampled, dtype=torch.bool)
        mine = torch.tensor(r.logprobs)[sampled]
        torch.testing.assert_close(mine, teacher_forced_logprobs(model, prompt, r.token_ids)[sampled],
                                   atol=2e-3, rtol=0)
        assert all(lp == 0.0 for lp, s in zip(r.logprobs, r.sampled) if not s)
    assert two_blocks >= 2  # at 0.7 SmolLM2 closes its python block in most of these samples
    well_formed = [parse_proposal("deduction", r.text, think=False).well_formed for r in responses]
    assert sum(well_formed) >= 1


def test_a_block_left_open_ends_the_response(smol):
    _, tokenizer, model = smol
    cfg = compose_cfg("experiment=azr_quickstart", "rollout.max_new_tokens=3")
    prompter = Prompter.from_config(tokenizer, cfg)
    request = Request(propose_prompt("deduction", references=seed_tasks()["deduction"]), ("python", "input"))
    (_, (r,)), = generate(HFEngine(cfg.rollout, model, tokenizer), prompter, [request], 1, seed=0)
    assert len(r.token_ids) == 3 and r.sampled == [1, 1, 1] and r.finish_reason == "length"
    assert not parse_proposal("deduction", r.text, think=False).well_formed


def test_single_block_solver_stops_at_its_fence(scaffolded):
    _, prompter, engine = scaffolded
    task = seed_tasks()["deduction"][0]
    (_, (r,)), = generate(engine, prompter, [solve_request(task)], 1, seed=0, temperature=0.0)
    assert r.text.startswith("```output\n") and all(r.sampled)
    assert r.finish_reason == "length" or r.text.rstrip().endswith("```")  # nothing after the answer's block


def test_a_step_trains_only_what_the_policy_sampled(smol, smol_cache, tmp_path):
    """One AZR step on SmolLM2 with the scaffold: the batch marks every written fence, and its loss
    mask leaves them out (the learner sees the fences as context only)."""
    from rlpretrain.launch.local import place_local
    from rlpretrain.methods.base import METHODS, MethodContext

    import rlpretrain.methods  # noqa: F401  (registers the methods)

    _, tokenizer, model = smol
    cfg = compose_cfg("experiment=azr_quickstart", f"model.cache_dir={smol_cache}", f"run_dir={tmp_path}",
                      f"rollout.temperature={TEMPERATURE}", "rollout.max_new_tokens=48", "method.seed_buffer_size=0",
                      "method.heldout_per_type=0", "method.batch_per_task_role=2", "method.learnability_rollouts=1",
                      "method.induction_inputs=2", "method.sandbox.workers=1")
    placed = place_local(cfg, model, tokenizer)
    azr = METHODS.get("azr")(cfg, MethodContext(tokenizer, placed.learner, 4096))
    try:
        azr.prepare(placed.engine)
        batch = azr.rollout(1, placed.engine)
    finally:
        azr.close()
    fences = {"\n```input\n", "\n```message\n"}
    written_rows = 0
    for ids, mask in zip(batch.completion_ids, batch.completion_mask):
        runs, current = [], []
        for t, m in zip(ids, mask):
            if not m:
                current.append(t)
            elif current:
                runs.append(current)
                current = []
        runs += [current] if current else []
        assert {tokenizer.decode(r) for r in runs} <= fences
        written_rows += bool(runs)
    assert written_rows >= 2
    t = batch.to_tensors(tokenizer.pad_token_id)
    for i, (p, mask) in enumerate(zip(batch.prompt_ids, batch.completion_mask)):
        assert t["loss_mask"][i, len(p):len(p) + len(mask)].tolist() == [float(m) for m in mask]
    assert int(t["loss_mask"].sum()) == sum(batch.trained_lengths()) < sum(len(c) for c in batch.completion_ids)
