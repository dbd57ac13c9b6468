"""Solver accuracy per task type on a run's frozen held-out tasks, before and after training:

    python -m rlpretrain.methods.azr.heldout RUN_DIR

The tasks are the first `method.heldout_per_type` valid proposals of each type in the seeding phase
(RUN_DIR/azr/heldout.json, never put in a buffer). The first and the last checkpoint answer each
task once, greedily, in the run's prompt format, and the answers are checked in the sandbox as in
training. Printed, and written to RUN_DIR/azr/heldout_eval.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rlpretrain.checkpoint import first_and_last
from rlpretrain.methods.azr.checks import check_answers
from rlpretrain.methods.azr.executor import Executor
from rlpretrain.methods.azr.generation import generate
from rlpretrain.methods.azr.parsing import parse_solution
from rlpretrain.methods.azr.prompting import Prompter
from rlpretrain.methods.azr.tasks import Task
from rlpretrain.methods.azr.templates import solve_request
from rlpretrain.models.loading import load_policy, pick_device
from rlpretrain.rollout.hf import HFEngine
from rlpretrain.run.record import load_run_config


def solver_accuracy(model, tokenizer, cfg, tasks: list[Task], executor: Executor) -> dict[str, dict]:
    m = cfg.method
    prompter = Prompter.from_config(tokenizer, cfg)
    outs = generate(HFEngine(cfg.rollout, model, tokenizer), prompter, [solve_request(t) for t in tasks], 1, 0,
                    temperature=0.0)
    answers = [parse_solution(t.type, rs[0].text, m.think) for t, (_, rs) in zip(tasks, outs)]
    right = check_answers(executor, tasks, answers, list(m.banned_modules))
    out = {}
    for kind in dict.fromkeys(t.type for t in tasks):
        mine = [(a, r) for t, a, r in zip(tasks, answers, right) if t.type == kind]
        out[kind] = {"tasks": len(mine), "right": sum(r for _, r in mine),
                     "well_formed": sum(a is not None for a, _ in mine)}
    return out


def evaluate_run(run_dir: Path) -> dict:
    cfg = load_run_config(run_dir)
    path = run_dir / "azr" / "heldout.json"
    if cfg is None or not path.exists():
        raise FileNotFoundError(f"{run_dir}: not an AZR run with held-out tasks (method.heldout_per_type > 0)")
    tasks = [Task.from_dict(d) for v in json.loads(path.read_text()).values() for d in v]
    compared = first_and_last(run_dir)
    s = cfg.method.sandbox
    executor = Executor(s.workers, s.mode, s.timeout, s.memory_mb)
    out = {}
    try:
        for label, ckpt in compared:
            tokenizer, model = load_policy(ckpt / "policy", "float32", pick_device(cfg.device))
            out[label] = {"checkpoint": ckpt.name, "types": solver_accuracy(model, tokenizer, cfg, tasks, executor)}
    finally:
        executor.close()
    (run_dir / "azr" / "heldout_eval.json").write_text(json.dumps(out, indent=2))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    out = evaluate_run(parser.parse_args().run_dir)
    print("held-out solver accuracy (greedy, one answer per task):")
    for label, r in out.items():
        cells = "  ".join(f"{t} {v['right']}/{v['tasks']} (well formed {v['well_formed']})" for t, v in r["types"].items())
        print(f"  {label:6s} ({r['checkpoint']}): {cells}")


if __name__ == "__main__":
    main()
