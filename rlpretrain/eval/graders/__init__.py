"""Graders, registered in GRADERS by name: each turns extracted answers into scores in [0, 1].

| name | for | how |
|---|---|---|
| `math_verify` | math (RLP/NeMo-Skills, TPT) | the math-verify package: latex/expression parse, sympy equivalence |
| `math_equal` | math (AZR's numbers) | Qwen2.5-Math-style rules: normalised strings, numbers within 1e-4 (and x100, /100), tuples elementwise, sympy |
| `choice` | multiple choice | the option letter, from a bare letter, \\boxed{X}, "the answer is (X)" or "Answer: X" |
| `exact` | GSM8K (TPT), BoolQ | normalised strings; numbers by value |
| `code_tests` | HumanEval(+), MBPP+, LiveCodeBench | the program and the example's tests in the sandbox; 1 when all pass |
| `next_token` | RPT Table 1, standard | the greedy next token's id equals the gold token's |
| `prefix_match` | RPT Table 1, reasoning | RPT's prefix-match reward of the boxed prediction |
"""

from rlpretrain.eval.graders import choice, code_tests, exact, math_equal, mathverify, next_token

__all__ = ["choice", "code_tests", "exact", "math_equal", "mathverify", "next_token"]
