"""AZR's tasks: a program `f`, its input(s) and the output(s) the sandbox computed, by task type.

- deduction: the solver sees (program, input) and writes the output;
- abduction: the solver sees (program, output) and writes any input that gives it;
- induction: the solver sees some input/output pairs and a message, writes a program, and is checked
  on the hidden pairs.

Inputs are argument-list text (`'Hello', [1, 2]`), parsed with `ast` inside the sandbox; outputs are
the sandbox's canonical JSON values (sandbox/values.py), never text to evaluate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from rlpretrain.sandbox.values import from_canonical

TASK_TYPES = ("deduction", "abduction", "induction")
ROLES = ("propose", "solve")


def role_id(task_type: str, role: str) -> int:
    """The TRR++ whitening group of a sample: one per (task type x role), six in all."""
    return TASK_TYPES.index(task_type) * len(ROLES) + ROLES.index(role)


@dataclass(frozen=True)
class Task:
    type: str
    program: str
    input: str = ""  # deduction / abduction: the argument text
    output: object = None  # ... and the canonical value f(input) returned
    inputs: tuple[str, ...] = ()  # induction: argument texts; the first `visible` are shown
    outputs: tuple = ()  # ... and their canonical outputs
    message: str = ""
    visible: int = 0

    def key(self) -> tuple:
        """Identity for de-duplication in a buffer."""
        return (self.type, self.program, self.input, self.inputs)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["inputs"], d["outputs"] = list(self.inputs), list(self.outputs)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Task":
        return cls(**{**d, "inputs": tuple(d["inputs"]), "outputs": tuple(d["outputs"])})

    def shown_pairs(self) -> list[tuple[str, str]]:
        return [(i, show(o)) for i, o in zip(self.inputs[:self.visible], self.outputs[:self.visible])]

    def hidden_pairs(self) -> list[tuple[str, object]]:
        return list(zip(self.inputs[self.visible:], self.outputs[self.visible:]))


def show(canonical) -> str:
    """A canonical value as the Python literal the model reads (and writes back)."""
    return repr(from_canonical(canonical))


# The paper's seed (AZR §3.3): the identity function with input "Hello World".
SEED_PROGRAM = "def f(a):\n    return a"
SEED_INPUT = "'Hello World'"


def seed_tasks() -> dict[str, list[Task]]:
    """The seed triplet in the deduction and abduction buffers; induction starts empty and draws its
    programs from those two."""
    return {"deduction": [Task("deduction", SEED_PROGRAM, SEED_INPUT, "Hello World")],
            "abduction": [Task("abduction", SEED_PROGRAM, SEED_INPUT, "Hello World")],
            "induction": []}
