"""RolloutBatch algebra (select, concat), dynamic sampling over batches, and the sampling temperature check."""

from __future__ import annotations

import pytest
import torch

from rlpretrain.rollout.batch import RolloutBatch
from rlpretrain.rollout.dynamic_sampling import dynamic_sample, dynamic_sample_batch


def _batch(n: int, tag: str, group: list[int], **extra) -> RolloutBatch:
    """n samples whose every per-sample value names the batch and the row, so that a misaligned field shows."""
    return RolloutBatch(
        prompt_ids=[[100 + i, 1] for i in range(n)], completion_ids=[[200 + i] * (i + 1) for i in range(n)],
        sampling_logprobs=[[-0.5 - i] * (i + 1) for i in range(n)], finish_reasons=[f"{tag}{i}" for i in range(n)],
        rewards=[float(10 * i) for i in range(n)], group=group, policy_version=3,
        columns={"text": [f"{tag}-text{i}" for i in range(n)], "score": [torch.tensor(float(i)) for i in range(n)]},
        temperature=0.7, **extra)


def _rows(batch: RolloutBatch) -> list[tuple]:
    """Each sample's every per-sample field, the group id left out (concat renumbers it)."""
    return [(batch.prompt_ids[i], batch.completion_ids[i], batch.sampling_logprobs[i], batch.finish_reasons[i],
             batch.rewards[i], None if batch.role is None else batch.role[i],
             None if batch.advantages is None else batch.advantages[i],
             *(batch.columns[k][i] for k in sorted(batch.columns))) for i in range(len(batch))]


def test_select_keeps_every_field_aligned():
    batch = _batch(5, "a", [4, 4, 9, 9, 1], role=[0, 1, 0, 1, 2], advantages=[0.5, -0.5, 1.0, -1.0, 0.0],
                   timings={"time/generate": 2.0}, stats={"x": 1.0})
    part = batch.select([3, 0, 4])
    assert _rows(part) == [_rows(batch)[i] for i in (3, 0, 4)]
    assert part.group == [9, 4, 1] and part.role == [1, 0, 2]  # ids kept as they are
    assert (part.policy_version, part.temperature) == (3, 0.7)
    assert (part.timings, part.stats) == ({"time/generate": 2.0}, {"x": 1.0})
    part.timings["time/generate"] = 0.0  # copies, not the original's dicts
    part.stats["x"] = 0.0
    assert batch.timings == {"time/generate": 2.0} and batch.stats == {"x": 1.0}
    empty = batch.select([])
    assert len(empty) == 0 and set(empty.columns) == {"text", "score"} and empty.role == []


def test_select_without_engine_logprobs():
    batch = RolloutBatch([[1], [2]], [[3], [4, 5]], [], ["stop", "stop"], [0.0, 1.0], [0, 0], policy_version=0)
    part = batch.select([1])
    assert part.sampling_logprobs == [[]] and part.completion_ids == [[4, 5]]
    assert "sampling_logprobs" not in part.to_tensors(pad_id=0)  # still "not reported"


def test_concat_keeps_every_field_aligned_and_makes_groups_disjoint():
    a = _batch(4, "a", [7, 7, 2, 2], role=[0, 1, 0, 1], timings={"time/generate": 1.5, "time/score": 0.25},
               stats={"a/x": 1.0})
    b = _batch(3, "b", [2, 2, 5], role=[1, 1, 0], timings={"time/generate": 0.5}, stats={"b/y": 2.0})
    joined = RolloutBatch.concat([a, b])
    assert _rows(joined) == _rows(a) + _rows(b)
    # b's group 2 is not a's group 2; ids 0.. in order of first appearance
    assert joined.group == [0, 0, 1, 1, 2, 2, 3]
    assert joined.role == [0, 1, 0, 1, 1, 1, 0]  # role ids are labels shared across batches
    assert joined.timings == {"time/generate": 2.0, "time/score": 0.25}
    assert joined.stats == {"a/x": 1.0, "b/y": 2.0}
    assert (joined.policy_version, joined.temperature, joined.advantages) == (3, 0.7, None)
    with_adv = RolloutBatch.concat([_batch(1, "c", [0], advantages=[0.25]),
                                    _batch(2, "d", [0, 1], advantages=[1.0, -1.0])])
    assert with_adv.advantages == [0.25, 1.0, -1.0] and with_adv.group == [0, 1, 2]


def test_select_then_concat_round_trips():
    batch = _batch(6, "a", [0, 0, 1, 1, 2, 2], role=[0, 0, 1, 1, 0, 0])
    parts = [batch.select([i for i, g in enumerate(batch.group) if g == k]) for k in (0, 1, 2)]
    assert RolloutBatch.concat(parts).records() == batch.records()


@pytest.mark.parametrize("change, message", [
    (lambda b: setattr(b, "policy_version", 4),
     r"different policy_versions \[3, 4\]; one batch is sampled by one policy"),
    (lambda b: setattr(b, "temperature", 1.0), r"different temperatures \[0.7, 1.0\]; one batch is sampled and scored"),
    (lambda b: setattr(b, "role", [0, 1]), "do not have the same fields and columns .only some have role."),
    (lambda b: b.columns.pop("text"), "do not have the same fields and columns .only some have columns/text."),
    (lambda b: setattr(b, "advantages", [0.0, 1.0]), "only some have advantages"),
    (lambda b: setattr(b, "stats", {"s": 2.0}), r"stats give 's' different values \(1.0 and 2.0\)"),
    (lambda b: setattr(b, "rewards", [0.0]), r"RolloutBatch.rewards has 1 entries for 2 samples"),
])
def test_concat_errors(change, message):
    a, b = _batch(2, "a", [0, 0], stats={"s": 1.0}), _batch(2, "b", [0, 0], stats={"s": 1.0})
    change(b)
    with pytest.raises(ValueError, match=message):
        RolloutBatch.concat([a, b])


def test_concat_of_nothing_and_misaligned_select():
    with pytest.raises(ValueError, match="RolloutBatch.concat needs at least one batch"):
        RolloutBatch.concat([])
    batch = _batch(3, "a", [0, 0, 1])
    batch.columns["text"].pop()
    with pytest.raises(ValueError, match="RolloutBatch.columns/text has 2 entries for 3 samples"):
        batch.select([0])


def test_completion_mask_keeps_written_tokens_out_of_the_loss():
    # sample 1's middle two tokens were written by the method (AZR's scaffold fences), not sampled
    batch = _batch(3, "a", [0, 0, 1], completion_mask=[[1], [1, 1], [1, 0, 1]])
    batch.completion_mask[1] = [1, 0]
    assert batch.trained_lengths() == [1, 1, 2]
    t = batch.to_tensors(pad_id=0)
    # rows: prompt (2 tokens) + completion; the loss covers sampled completion tokens only
    assert t["loss_mask"].tolist() == [[0, 0, 1, 0, 0], [0, 0, 1, 0, 0], [0, 0, 1, 0, 1]]
    assert _batch(3, "a", [0, 0, 1]).trained_lengths() == [1, 2, 3]  # no mask: every token was sampled
    part = RolloutBatch.concat([batch.select([2]), batch.select([1])])
    assert part.completion_mask == [[1, 0, 1], [1, 0]] and part.records()[0]["completion_mask"] == [1, 0, 1]
    batch.completion_mask[2] = [1, 1]
    with pytest.raises(ValueError, match=r"RolloutBatch.completion_mask\[2\] has 2 entries for 3 completion tokens"):
        batch.to_tensors(pad_id=0)


# ---------------------------------------------------------------- dynamic sampling over batches

# round r draws n groups of 2 from these patterns, in order (as test_rpt_units' generic test)
PATTERNS = [[1, 0], [1, 1], [0, 0], [0, 1],  # round 0: 4 asked, 2 kept
            [1, 1], [0.5, 0],                # round 1: 2 asked, 1 kept
            [0, 0.5], [1, 0]]                # round 2: 1 asked, 1 kept


def _round_batches():
    drawn: list[int] = []

    def sample(n, r):
        ids = list(range(len(drawn), len(drawn) + n))
        drawn.extend(ids)
        rows = [(k, x) for k in ids for x in PATTERNS[k]]
        return RolloutBatch(prompt_ids=[[k] for k, _ in rows], completion_ids=[[k, j] for j, (k, _) in enumerate(rows)],
                            sampling_logprobs=[[-1.0, -2.0]] * len(rows), finish_reasons=["stop"] * len(rows),
                            rewards=[float(x) for _, x in rows], group=[k - ids[0] for k, _ in rows], policy_version=0,
                            columns={"context": [k for k, _ in rows]}, timings={"time/generate": 1.0 + r},
                            temperature=1.0)
    return sample


def test_dynamic_sample_batch_keeps_the_generic_choice():
    batch = dynamic_sample_batch(_round_batches(), target=4, max_rounds=5)
    drawn: list[int] = []

    def contexts(n, r):  # the generic dynamic_sample on the same patterns, a group = its context id
        drawn.extend(range(len(drawn), len(drawn) + n))
        return drawn[-n:]
    generic = dynamic_sample(contexts, lambda k: PATTERNS[k], target=4, max_rounds=5)
    assert generic.groups == [0, 3, 5, 6]
    assert batch.columns["context"] == [0, 0, 3, 3, 5, 5, 6, 6]
    assert batch.rewards == [1.0, 0.0, 0.0, 1.0, 0.5, 0.0, 0.0, 0.5]
    assert batch.group == [0, 0, 1, 1, 2, 2, 3, 3]
    assert batch.prompt_ids == [[k] for k in batch.columns["context"]]
    assert batch.timings == {"time/generate": 1.0 + 2.0 + 3.0}  # all three rounds, dropped groups' included
    assert batch.stats == {"dynamic_sampling/rounds": 3.0, "dynamic_sampling/sampled_groups": 7.0,
                           "dynamic_sampling/dropped_groups": 3.0, "dynamic_sampling/kept_groups": 4.0,
                           "dynamic_sampling/short": 0.0, "dynamic_sampling/fallback": 0.0}


def test_dynamic_sample_batch_fallback_is_the_last_round():
    def sample(n, r):
        return RolloutBatch([[r]] * 2 * n, [[1]] * 2 * n, [[0.0]] * 2 * n, ["stop"] * 2 * n, [0.0] * 2 * n,
                            [i // 2 for i in range(2 * n)], policy_version=0, columns={"round": [r] * 2 * n})
    batch = dynamic_sample_batch(sample, target=2, max_rounds=2)
    assert batch.columns["round"] == [1, 1, 1, 1] and batch.group == [0, 0, 1, 1]
    assert batch.stats["dynamic_sampling/fallback"] == 1.0


# ---------------------------------------------------------------- the sampling temperature

@pytest.mark.parametrize("method, overrides", [
    ("rlp", []),
    ("rpt", ["experiment=rpt_quickstart", "method.entropy_filter=false", "method.format_warmup.steps=0",
             "method.eval.holdout_docs=5", "method.contexts_per_step=2", "method.group_size=2", "data.num_docs=20"]),
])
def test_methods_record_the_temperature_and_the_update_checks_it(small_cfg, method, overrides):
    from rlpretrain.algorithms.update import PolicyUpdate
    from rlpretrain.launch.local import place_local
    from rlpretrain.methods.base import METHODS, MethodContext
    from rlpretrain.models.loading import load_model_and_tokenizer

    import rlpretrain.methods  # noqa: F401  (registers the methods)

    cfg = small_cfg(*overrides, "rollout.temperature=0.7", "rollout.max_new_tokens=4")
    tokenizer, policy = load_model_and_tokenizer(cfg.model, torch.device("cpu"))
    placed = place_local(cfg, policy, tokenizer)
    rl = METHODS.get(cfg.method.name)(cfg, MethodContext(tokenizer, placed.learner, 4096))
    assert cfg.method.name == method
    rl.prepare(placed.engine)
    batch = rl.rollout(0, placed.engine)
    assert batch.temperature == 0.7
    update = PolicyUpdate(cfg.algorithm, placed.learner, tokenizer.pad_token_id, 1.0, total_steps=1)
    with pytest.raises(ValueError, match=r"the batch was sampled at temperature 0.7 but the update computes "
                                         r"log-probs at 1.0: the importance ratio would be biased"):
        update(batch)
    assert placed.learner.version == 0  # refused before any step
