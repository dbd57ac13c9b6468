"""The six task prompts (propose / solve x deduction / abduction / induction) as named templates,
and the R1 think template that wraps them.

The structure follows the paper's prompts (AZR, arXiv 2505.03335, Appendix: the proposer gets K
reference snippets and the rules for a valid program, the induction proposer one program; answers
go in ```python / ```input / ```output / ```message blocks); the wording is ours and shorter, so that
a small model on a CPU reads fewer tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlpretrain.methods.azr.parsing import SOLUTION_BLOCK
from rlpretrain.methods.azr.tasks import Task, show


@dataclass(frozen=True)
class Request:
    """What the model is asked: a task prompt (before the prompt format wraps it) and the blocks its
    response must hold, in order."""
    prompt: str
    blocks: tuple[str, ...]

RULES = """Rules for the program:
- the entry function is named `f`, takes at least one argument and returns a value; helper functions and classes may come before it
- deterministic: no randomness, dates or times, files, network, printing or logging
- do not use these modules or names: {banned}
- it must finish within {timeout:g} seconds"""

ARGS_FORMAT = "the arguments, separated by commas, strings quoted"

PROPOSE = {
    "deduction": """## Task: write a new Python function `f` and one input for it
A test taker will see your function and your input and must work out the output, so make the function need several steps of reasoning, and make it different from the reference snippets.

{rules}

Write the function in a ```python block and the input ({args}) in an ```input block.

### Reference snippets
{references}""",
    "abduction": """## Task: write a new Python function `f` and one input for it
A test taker will see your function and the output it returns for your input and must find an input that gives this output, so make that hard to invert, and make it different from the reference snippets.

{rules}

Write the function in a ```python block and the input ({args}) in an ```input block.

### Reference snippets
{references}""",
    "induction": """## Task: write {n} inputs for the function below, and a message
A test taker will see some of your inputs with the outputs of `f`, and your message, and must write a function that gives the same outputs on the other inputs. Choose diverse inputs that together reveal what `f` does. The message may describe the task but must not contain the code.

For example, for the function `def f(a): return len(a)` an answer is:
```input
'cat'
```
```input
[1, 2, 3, 4]
```
```message
Find how the output depends on the input.
```

Now the function:
```python
{program}
```

Write each input ({args}) in its own ```input block, like this one:
```input
{example}
```
and then the message in a ```message block.""",
}

SOLVE = {
    "deduction": """## Task: work out what the function returns for the input
```python
{program}
```
```input
{input}
```
Write the returned value as a Python literal in an ```output block.""",
    "abduction": """## Task: find an input for which the function returns the output
```python
{program}
```
```output
{output}
```
Write the input ({args}) in an ```input block.""",
    "induction": """## Task: write a Python function `f` that maps each input to its output
{pairs}
Message: {message}

Write the function in a ```python block.""",
}

# The R1 template (DeepSeek-R1, arXiv 2501.12948; AZR uses it for base models): reasoning in
# <think>...</think>, then the answer in <answer>...</answer>. The prompt ends inside <think>.
R1_SYSTEM = ("The assistant first reasons about the user's task step by step, then answers. The reasoning goes "
             "between <think> and </think> and the answer between <answer> and </answer>, i.e. "
             "<think> reasoning here </think> <answer> answer here </answer>.")
R1_PLAIN = "A conversation between User and Assistant. " + R1_SYSTEM + "\nUser: {prompt}\nAssistant: <think>"
PROMPT_FORMATS = ("r1", "chat", "none")


def reference_block(task: Task) -> str:
    return f"```python\n{task.program}\n```\n```input\n{task.input}\n```\n```output\n{show(task.output)}\n```"


def propose_prompt(task_type: str, *, references: list[Task] = (), source: Task | None = None, n_inputs: int = 10,
                   banned: list[str] = (), timeout: float = 5.0) -> str:
    """deduction / abduction: K reference tasks; induction: the task whose program the inputs are for
    (its input shows the input format: a small model otherwise writes calls such as `f(1)`)."""
    rules = RULES.format(banned=", ".join(banned), timeout=timeout)
    if task_type == "induction":
        if source is None:
            raise ValueError("an induction proposal prompt needs the source task whose program it shows")
        return PROPOSE["induction"].format(n=n_inputs, program=source.program, example=source.input, args=ARGS_FORMAT)
    refs = "\n\n".join(reference_block(t) for t in references)
    return PROPOSE[task_type].format(rules=rules, args=ARGS_FORMAT, references=refs)


def solve_prompt(task: Task) -> str:
    if task.type == "deduction":
        return SOLVE["deduction"].format(program=task.program, input=task.input)
    if task.type == "abduction":
        return SOLVE["abduction"].format(program=task.program, output=show(task.output), args=ARGS_FORMAT)
    pairs = "\n".join(f"```input\n{i}\n```\n```output\n{o}\n```" for i, o in task.shown_pairs())
    return SOLVE["induction"].format(pairs=pairs, message=task.message)


def solve_request(task: Task) -> Request:
    """The solver's prompt and the block its answer goes in."""
    return Request(solve_prompt(task), (SOLUTION_BLOCK[task.type],))


def wrap(prompt: str, fmt: str, tokenizer, think: bool = True) -> str:
    """The text the model continues. r1: the plain R1 conversation; chat: the model's chat template
    with the R1 instruction as the system turn, the assistant's turn opened with <think> (think=False:
    no instruction, the turn left open); none: as is."""
    if fmt == "r1":
        if not think:
            raise ValueError("method.prompt_format=r1 is the think template: it needs method.think=true")
        return R1_PLAIN.format(prompt=prompt)
    if fmt == "chat":
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("method.prompt_format=chat needs a tokenizer with a chat template")
        turns = [{"role": "system", "content": R1_SYSTEM}] if think else []
        text = tokenizer.apply_chat_template(turns + [{"role": "user", "content": prompt}],
                                             tokenize=False, add_generation_prompt=True)
        return text + "<think>" if think else text
    if fmt == "none":
        return prompt
    raise ValueError(f"method.prompt_format must be one of {list(PROMPT_FORMATS)}, got '{fmt}'")
