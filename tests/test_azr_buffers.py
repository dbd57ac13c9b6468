"""AZR's task buffers: uniform references without replacement, FIFO cap, de-duplication, exact state."""

import random

import pytest

from rlpretrain.methods.azr.buffers import TaskBuffer
from rlpretrain.methods.azr.tasks import Task


def tasks(n: int) -> list[Task]:
    return [Task("deduction", f"def f(a):\n    return a + {i}", "1", 1 + i) for i in range(n)]


def test_references_are_distinct_and_uniform():
    buf = TaskBuffer(100, tasks(6))
    rng = random.Random(0)
    counts = {t.program: 0 for t in buf.tasks}
    for _ in range(3000):
        refs = buf.references(3, rng)
        assert len({r.program for r in refs}) == 3
        for r in refs:
            counts[r.program] += 1
    assert all(abs(c / 3000 - 0.5) < 0.05 for c in counts.values())  # each task in half of the draws
    assert len(buf.references(10, rng)) == 6  # fewer tasks than K: all of them


def test_cap_evicts_the_oldest_and_duplicates_are_skipped():
    buf = TaskBuffer(3)
    ts = tasks(5)
    assert buf.add(ts[0]) and not buf.add(Task("deduction", ts[0].program, "1", 1))
    for t in ts[1:]:
        buf.add(t)
    assert list(buf.tasks) == ts[2:] and buf.added == 5
    assert buf.add(ts[0])  # evicted, so it may come back
    with pytest.raises(ValueError, match="buffer_cap must be at least 1"):
        TaskBuffer(0)


def test_draw_without_replacement_while_large_enough():
    buf = TaskBuffer(10, tasks(4))
    rng = random.Random(1)
    assert len({t.program for t in buf.draw(4, rng)}) == 4
    assert len(buf.draw(9, rng)) == 9 and TaskBuffer(10).draw(3, rng) == []


def test_state_dict_restores_order_and_sampling():
    buf = TaskBuffer(4, tasks(6))
    other = TaskBuffer(4)
    other.load_state_dict(buf.state_dict())
    assert list(other.tasks) == list(buf.tasks) and other.added == buf.added
    assert other.references(2, random.Random(5)) == buf.references(2, random.Random(5))
    induction = Task("induction", "def f(a):\n    return a", inputs=("1", "2"), outputs=(1, {"tuple": [2]}), visible=1)
    assert Task.from_dict(induction.to_dict()) == induction


def test_held_out_tasks_never_reach_a_buffer():
    from rlpretrain.methods.azr.method import admit, place_seeded

    seed, a, b, c = tasks(4)
    buffers = {"deduction": TaskBuffer(100, [seed]), "abduction": TaskBuffer(100, [as_type(seed, "abduction")])}
    heldout = {"deduction": [], "abduction": []}
    # a proposal equal to the seed is not held out: the solver trains on the seed
    assert place_seeded(Task(seed.type, seed.program, seed.input, seed.output), buffers, heldout, 2) == "duplicate"
    assert [place_seeded(t, buffers, heldout, 2) for t in (a, b, a, c)] == ["heldout", "heldout", "duplicate", "buffer"]
    assert heldout["deduction"] == [a, b] and list(buffers["deduction"].tasks) == [seed, c]
    # the same program and input as an abduction task: neither held out again nor put in a buffer
    assert place_seeded(as_type(a, "abduction"), buffers, heldout, 2) == "duplicate"
    # an abduction task whose triple a buffer already has (as deduction) is trained on, so not held out
    assert place_seeded(as_type(c, "abduction"), buffers, heldout, 2) == "buffer"
    # during training, a proposal equal to a held-out task, of either type, stays out of the buffers
    assert not admit(b, buffers, heldout) and not admit(as_type(b, "abduction"), buffers, heldout)
    assert b not in buffers["deduction"] and as_type(b, "abduction") not in buffers["abduction"]
    assert admit(tasks(6)[5], buffers, heldout) and len(buffers["deduction"]) == 3


def as_type(task: Task, task_type: str) -> Task:
    return Task(task_type, task.program, task.input, task.output)
