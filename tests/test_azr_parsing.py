"""AZR's prompt templates and response parsing: the R1 shape and the fenced blocks."""

import pytest

from rlpretrain.methods.azr.parsing import answer_text, blocks, opened_block, parse_proposal, parse_solution
from rlpretrain.methods.azr.prompting import Prompter
from rlpretrain.methods.azr.tasks import SEED_INPUT, SEED_PROGRAM, Task, role_id, seed_tasks
from rlpretrain.methods.azr.templates import propose_prompt, solve_prompt, wrap


def r1(answer: str, thought: str = " reasoning ") -> str:
    """A response to a prompt that ends with <think>."""
    return f"{thought}</think>\n<answer>{answer}</answer>"


def test_answer_text_needs_the_r1_shape():
    assert answer_text(r1("x")) == "x"
    assert answer_text("no tags at all") is None
    assert answer_text("thought</think> answer without tags") is None
    assert answer_text("<answer>x</answer>") is None  # the thought must be closed first
    assert answer_text("plain", think=False) == "plain"


def test_blocks_in_order_and_stripped():
    text = "```input\n1, 2\n```\nthen\n```input\n'a'\n```\n```python\ndef f(a):\n    return a\n```"
    assert blocks(text, "input") == ["1, 2", "'a'"]
    assert blocks(text, "python") == ["def f(a):\n    return a"]
    assert blocks(text, "output") == []


def test_parse_proposal_per_task_type():
    code = "```python\ndef f(x):\n    return x + 1\n```\n```input\n3\n```"
    p = parse_proposal("deduction", r1(code))
    assert p.well_formed and p.program == "def f(x):\n    return x + 1" and p.input == "3"
    assert not parse_proposal("abduction", r1("```python\ndef f(x): return x\n```")).well_formed  # no input
    assert not parse_proposal("deduction", code).well_formed  # no R1 shape
    ind = r1("```input\n1\n```\n```input\n2\n```\n```input\n1\n```\n```input\n3\n```\n```message\nadds one\n```")
    p = parse_proposal("induction", ind, max_inputs=2)
    assert p.well_formed and p.inputs == ("1", "2") and p.message == "adds one"  # distinct, capped
    assert not parse_proposal("induction", r1("```input\n1\n```")).well_formed  # no message
    empty = parse_proposal("induction", r1("```input\n1\n```\n```message\n```"))
    assert empty.well_formed and empty.message == ""  # the block is required, its words are optional
    assert not parse_proposal("induction", r1("```input\n\n```\n```message\nhi\n```")).well_formed  # no input


def test_parse_solution_takes_the_last_block_of_its_kind():
    assert parse_solution("deduction", r1("```output\n1\n```\n```output\n[2]\n```")) == "[2]"
    assert parse_solution("abduction", r1("```input\n'a', 2\n```")) == "'a', 2"
    assert parse_solution("induction", r1("```python\ndef f(a):\n    return a\n```")) == "def f(a):\n    return a"
    assert parse_solution("deduction", r1("no block")) is None
    assert parse_solution("deduction", "```output\n1\n```") is None


def test_templates_carry_the_task_and_the_answer_format():
    seed = seed_tasks()["deduction"][0]
    prompt = propose_prompt("deduction", references=[seed], banned=["os", "random"], timeout=5)
    assert SEED_PROGRAM in prompt and SEED_INPUT in prompt and "'Hello World'" in prompt
    assert "os, random" in prompt and "```python" in prompt and "```input" in prompt
    ind = propose_prompt("induction", source=seed, n_inputs=7)
    assert "write 7 inputs" in ind and SEED_PROGRAM in ind and "```message" in ind
    assert "like this one:\n```input\n'Hello World'\n```" in ind
    task = Task("induction", SEED_PROGRAM, inputs=("1", "'b'", "[3]"), outputs=(1, "b", [3]), message="same", visible=1)
    solve = solve_prompt(task)
    assert "```input\n1\n```\n```output\n1\n```" in solve and "'b'" not in solve and "same" in solve
    assert "```output\n'Hello World'\n```" in solve_prompt(seed_tasks()["abduction"][0])


def test_wrap_formats():
    text = wrap("TASK", "r1", None)
    assert text.endswith("User: TASK\nAssistant: <think>") and "<answer>" in text
    assert wrap("TASK", "none", None) == "TASK"

    class NoTemplate:
        chat_template = None

    with pytest.raises(ValueError, match="prompt_format=chat needs a tokenizer with a chat template"):
        wrap("TASK", "chat", NoTemplate())
    with pytest.raises(ValueError, match="prompt_format must be one of"):
        wrap("TASK", "xml", None)
    with pytest.raises(ValueError, match="prompt_format=r1 is the think template: it needs method.think=true"):
        wrap("TASK", "r1", None, think=False)


def test_prefilled_block_is_part_of_the_response():
    assert opened_block("input") == "```input\n"
    # the prompt ends with the fence, so the parsed response starts with it
    assert parse_proposal("deduction", opened_block("python") + "def f(a):\n    return a\n```\n```input\n1\n```",
                          think=False).well_formed
    with pytest.raises(ValueError, match="scaffold_blocks needs method.think=false"):
        Prompter(None, "none", True, 100, None, scaffold_blocks=True)


def test_six_trr_groups():
    ids = {role_id(t, r) for t in ("deduction", "abduction", "induction") for r in ("propose", "solve")}
    assert ids == set(range(6))
