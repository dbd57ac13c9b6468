"""Absolute Zero (AZR, arXiv 2505.03335): one model proposes and solves code tasks, rewarded by the sandbox.

A step (the paper's Algorithm 1):
  propose   for each task type, B proposals (deduction / abduction: K references from the type's
            buffer; induction: a program from the deduction and abduction buffers), validated in
            one sandbox batch; valid tasks join their buffer;
  estimate  each valid proposal gets n solver rollouts: its learnability;
  solve     for each task type, B tasks drawn from the buffer, one answer each;
  check     the learnability rollouts and the answers in one sandbox batch;
  rewards   format-aware composites; TRR++ whitens them per (task type x role) (`RolloutBatch.role`).
Seeding (`prepare`) runs proposal rounds without updates until every buffer holds
`seed_buffer_size` valid tasks, and sets `heldout_per_type` of them aside, frozen, for evaluation.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
import random
import statistics
import time
from pathlib import Path

from rlpretrain.methods.azr.buffers import TaskBuffer
from rlpretrain.methods.azr.checks import check_answers
from rlpretrain.methods.azr.executor import Executor
from rlpretrain.methods.azr.generation import generate
from rlpretrain.methods.azr.parsing import parse_proposal, parse_solution, proposal_blocks
from rlpretrain.methods.azr.prompting import Prompter
from rlpretrain.methods.azr.rewards import ZERO_REWARD_MODES, learnability, proposer_reward, solve_reward
from rlpretrain.methods.azr.tasks import TASK_TYPES, Task, role_id, seed_tasks
from rlpretrain.methods.azr.templates import Request, propose_prompt, solve_request
from rlpretrain.methods.azr.validation import validate
from rlpretrain.methods.base import METHODS, Method, MethodContext
from rlpretrain.rollout.base import RolloutEngine
from rlpretrain.rollout.batch import RolloutBatch
from rlpretrain.seeding import derive_seed

log = logging.getLogger(__name__)


class SeedingError(RuntimeError):
    """The seeding phase ended without enough valid proposals."""


def check_config(m) -> None:
    unknown = [t for t in m.task_types if t not in TASK_TYPES]
    if unknown or not m.task_types:
        raise ValueError(f"method.task_types must be a non-empty subset of {list(TASK_TYPES)}, got {list(m.task_types)}")
    for key in ("batch_per_task_role", "learnability_rollouts", "determinism_runs", "induction_inputs",
                "seed_batch_per_type"):
        if getattr(m, key) is not None and getattr(m, key) < 1:
            raise ValueError(f"method.{key} must be at least 1, got {getattr(m, key)}")
    if m.min_induction_pairs < 2:
        raise ValueError("method.min_induction_pairs must be at least 2 (one shown pair, one hidden)")
    if m.zero_reward not in ZERO_REWARD_MODES:
        raise ValueError(f"method.zero_reward must be one of {list(ZERO_REWARD_MODES)}, got '{m.zero_reward}'")


def is_held_out(task: Task, heldout: dict[str, list[Task]]) -> bool:
    """Is this task's content (program and input(s)) one of the held-out tasks', of any type? A
    deduction and an abduction task with one program and input are the same triple: one held out
    must not reach the other buffer, where references and the solver would see it."""
    return any(task.key()[1:] == h.key()[1:] for tasks in heldout.values() for h in tasks)


def admit(task: Task, buffers: dict[str, TaskBuffer], heldout: dict[str, list[Task]]) -> bool:
    """A valid proposal joins its buffer unless it is a frozen held-out task (never trained on)."""
    return not is_held_out(task, heldout) and buffers[task.type].add(task)


def place_seeded(task: Task, buffers: dict[str, TaskBuffer], heldout: dict[str, list[Task]], heldout_per_type: int) -> str:
    """Where a valid proposal of the seeding phase goes: 'duplicate' (already in its buffer or held
    out), 'heldout' while its type has fewer than `heldout_per_type` set aside and no buffer holds
    its program and input(s), else 'buffer'. A held-out task is thus never one the solver has seen."""
    if task in buffers[task.type] or is_held_out(task, heldout):
        return "duplicate"
    in_a_buffer = any(task.key()[1:] == b.key()[1:] for buf in buffers.values() for b in buf.tasks)
    if len(heldout[task.type]) < heldout_per_type and not in_a_buffer:
        heldout[task.type].append(task)
        return "heldout"
    buffers[task.type].add(task)
    return "buffer"


@METHODS.register("azr")
class AZR(Method):
    def __init__(self, cfg, ctx: MethodContext):
        super().__init__(cfg, ctx)
        self.cfg = m = cfg.method
        check_config(m)
        self.seed = cfg.seed
        self.run_dir = Path(cfg.run_dir)
        self.types = list(m.task_types)
        self.banned = list(m.banned_modules)
        self.prompter = Prompter.from_config(ctx.tokenizer, cfg)
        seeds = seed_tasks()
        self.buffers = {t: TaskBuffer(m.buffer_cap, seeds[t]) for t in TASK_TYPES}
        self.heldout: dict[str, list[Task]] = {t: [] for t in TASK_TYPES}
        self.seeded = False
        self.executor: Executor | None = None
        self._stats: dict[str, float] = {}
        self._started = 0.0

    # ------------------------------------------------------------ life cycle

    def prepare(self, engine: RolloutEngine) -> None:
        s = self.cfg.sandbox
        self.executor = Executor(s.workers, s.mode, s.timeout, s.memory_mb)
        if not self.seeded:
            self._seed(engine)
        if any(self.heldout.values()):
            path = self.run_dir / "azr" / "heldout.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({t: [x.to_dict() for x in v] for t, v in self.heldout.items()}, indent=1))

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()
            self.executor = None

    def state_dict(self) -> dict:
        return {"buffers": {t: b.state_dict() for t, b in self.buffers.items()}, "seeded": self.seeded,
                "heldout": {t: [x.to_dict() for x in v] for t, v in self.heldout.items()}}

    def load_state_dict(self, state: dict) -> None:
        for t, b in self.buffers.items():
            b.load_state_dict(state["buffers"][t])
        self.seeded = state["seeded"]
        self.heldout = {t: [Task.from_dict(d) for d in v] for t, v in state["heldout"].items()}

    # ------------------------------------------------------------ seeding

    def _seed(self, engine: RolloutEngine) -> None:
        m = self.cfg
        for rnd in range(m.seed_max_rounds + 1):
            missing = {t: max(0, m.seed_buffer_size - len(self.buffers[t])) + m.heldout_per_type - len(self.heldout[t])
                       for t in self.types}
            if not any(missing.values()):
                self.seeded = True
                log.info("AZR seeding done after %d rounds: %s", rnd, self._sizes())
                return
            if rnd == m.seed_max_rounds:
                break
            rows = self._propose(engine, random.Random(derive_seed(self.seed, rnd, "azr-seed-refs")),
                                 derive_seed(self.seed, rnd, "azr-seed-sampling"), self._seed_batch())
            for row in rows:
                task = row["validated"].task
                if task is not None:
                    place_seeded(task, self.buffers, self.heldout, m.heldout_per_type)
            rejected = Counter(row["validated"].reason.split(":")[0] for row in rows if not row["validated"].valid)
            log.info("AZR seeding round %d: %s; rejected: %s", rnd + 1, self._sizes(), dict(rejected.most_common()))
        raise SeedingError(
            f"AZR seeding: after {m.seed_max_rounds} rounds of {self._seed_batch()} proposals per task type the "
            f"buffers hold {self._sizes()} (method.seed_buffer_size={m.seed_buffer_size}, "
            f"method.heldout_per_type={m.heldout_per_type}); the model's proposals rarely validate. Raise "
            "method.seed_max_rounds, lower method.seed_buffer_size, or start from a model that writes Python")

    def _seed_batch(self) -> int:
        return self.cfg.seed_batch_per_type or self.cfg.batch_per_task_role

    def _sizes(self) -> str:
        return ", ".join(f"{t}={len(self.buffers[t])}" + (f"+{len(self.heldout[t])} held out" if self.heldout[t] else "")
                         for t in self.types)

    # ------------------------------------------------------------ phases

    def _propose(self, engine: RolloutEngine, rng: random.Random, seed: int, per_type: int) -> list[dict]:
        """`per_type` proposals per task type, generated together and validated in one sandbox batch."""
        m, timeout = self.cfg, self.cfg.sandbox.timeout
        plan = []  # (task type, prompt, induction program)
        sources = list(self.buffers["deduction"].tasks) + list(self.buffers["abduction"].tasks)
        for t in self.types:
            for _ in range(per_type):
                if t == "induction":
                    source = rng.choice(sources)
                    plan.append((t, propose_prompt(t, source=source, n_inputs=m.induction_inputs), source.program))
                else:
                    refs = self.buffers[t].references(m.references, rng)
                    plan.append((t, propose_prompt(t, references=refs, banned=self.banned, timeout=timeout), ""))
        generated = generate(engine, self.prompter, [Request(p, proposal_blocks(t, m.induction_inputs)) for t, p, _ in plan],
                             1, seed)
        proposals = [parse_proposal(t, rs[0].text, m.think, m.induction_inputs) for (t, _, _), (_, rs) in zip(plan, generated)]
        checked = validate(self.executor, [(t, p, prog) for (t, _, prog), p in zip(plan, proposals)],
                           m.determinism_runs, self.banned, m.min_induction_pairs)
        return [{"type": t, "prompt_ids": ids, "completion": rs[0], "proposal": p, "validated": v}
                for (t, _, _), (ids, rs), p, v in zip(plan, generated, proposals, checked)]

    # ------------------------------------------------------------ the Method interface

    def rollout(self, step: int, engine: RolloutEngine) -> RolloutBatch:
        m = self.cfg
        self._started = time.perf_counter()
        self.executor.take_counters()
        rng = random.Random(derive_seed(self.seed, step, "azr-tasks"))
        t0 = time.perf_counter()
        proposed = self._propose(engine, rng, derive_seed(self.seed, step, "azr-propose"), m.batch_per_task_role)
        for row in proposed:
            if row["validated"].task is not None:
                admit(row["validated"].task, self.buffers, self.heldout)
        t1 = time.perf_counter()

        # learnability: n solver rollouts per valid proposal (not trained on); then B solver tasks per type
        valid = [r for r in proposed if r["validated"].valid]
        n = m.learnability_rollouts
        estimates = generate(engine, self.prompter, [solve_request(r["validated"].task) for r in valid], n,
                             derive_seed(self.seed, step, "azr-estimate"))
        solve_tasks = [task for t in self.types for task in self.buffers[t].draw(m.batch_per_task_role, rng)]
        solved = generate(engine, self.prompter, [solve_request(t) for t in solve_tasks], 1,
                          derive_seed(self.seed, step, "azr-solve"))
        t2 = time.perf_counter()

        tasks = [r["validated"].task for r in valid for _ in range(n)] + solve_tasks
        texts = [resp.text for _, rs in estimates for resp in rs] + [rs[0].text for _, rs in solved]
        answers = [parse_solution(t.type, x, m.think) for t, x in zip(tasks, texts)]
        right = check_answers(self.executor, tasks, answers, self.banned)
        t3 = time.perf_counter()

        successes = {id(r): right[i * n:(i + 1) * n] for i, r in enumerate(valid)}
        rows = [{"type": r["type"], "role": "propose", "prompt_ids": r["prompt_ids"], "completion": r["completion"],
                 "well_formed": r["proposal"].well_formed, "passed": r["validated"].valid,
                 "reward": proposer_reward(r["proposal"].well_formed, r["validated"].valid, successes.get(id(r), []),
                                           m.zero_reward),
                 "program_chars": len(r["validated"].task.program) if r["validated"].valid else 0}
                for r in proposed]
        for task, (ids, rs), answer, ok in zip(solve_tasks, solved, answers[len(valid) * n:], right[len(valid) * n:]):
            rows.append({"type": task.type, "role": "solve", "prompt_ids": ids, "completion": rs[0],
                         "well_formed": answer is not None, "passed": ok, "reward": solve_reward(answer is not None, ok),
                         "program_chars": len(task.program)})
        self._step_stats(proposed, valid, successes, rows)
        executions, exec_seconds = self.executor.take_counters()
        self._stats.update({"azr/executions": float(executions),
                            "azr/prompts_truncated": float(self.prompter.take_truncated())})
        return RolloutBatch(
            prompt_ids=[r["prompt_ids"] for r in rows], completion_ids=[r["completion"].token_ids for r in rows],
            sampling_logprobs=[r["completion"].logprobs for r in rows],
            finish_reasons=[r["completion"].finish_reason for r in rows], rewards=[r["reward"] for r in rows],
            completion_mask=[r["completion"].sampled for r in rows], temperature=self.prompter.rollout.temperature,
            group=list(range(len(rows))), policy_version=self.ctx.version,
            role=[role_id(r["type"], r["role"]) for r in rows],
            columns={"task_type": [r["type"] for r in rows], "azr_role": [r["role"] for r in rows],
                     "well_formed": [r["well_formed"] for r in rows], "passed": [r["passed"] for r in rows]},
            timings={"time/propose": t1 - t0, "time/generate_solve": t2 - t1, "time/check": t3 - t2,
                     "time/execute": exec_seconds})

    def _step_stats(self, proposed, valid, successes, rows) -> None:
        stats: dict[str, float] = {}
        for t in self.types:
            mine = [r for r in proposed if r["type"] == t]
            stats[f"azr/valid_rate/{t}"] = sum(r["validated"].valid for r in mine) / len(mine)
            learn = [learnability(successes[id(r)]) for r in valid if r["type"] == t]
            stats[f"azr/learnability/{t}"] = statistics.fmean(learn) if learn else 0.0
            solves = [r for r in rows if r["type"] == t and r["role"] == "solve"]
            if solves:
                stats[f"azr/solve_acc/{t}"] = sum(r["passed"] for r in solves) / len(solves)
            stats[f"azr/buffer/{t}"] = float(len(self.buffers[t]))
        for role in ("propose", "solve"):
            mine = [r for r in rows if r["role"] == role]
            if mine:
                stats[f"azr/format_error/{role}"] = sum(not r["well_formed"] for r in mine) / len(mine)
        solve_chars = [r["program_chars"] for r in rows if r["role"] == "solve"]
        stats["azr/solve_program_chars"] = statistics.fmean(solve_chars) if solve_chars else 0.0
        self._stats = stats

    def metrics(self, batch: RolloutBatch) -> dict[str, float]:
        # Called after the update and the weight sync, so the step is over: its seconds and the
        # executions' share of them go with the batch's timings (timings.jsonl: metrics.jsonl stays
        # deterministic, and a resumed run's metrics equal an uninterrupted one's).
        step_seconds = time.perf_counter() - self._started
        batch.timings["time/azr_step"] = step_seconds
        batch.timings["time/execute_share"] = batch.timings["time/execute"] / step_seconds
        return {**self._stats, "response_len_mean": statistics.fmean(batch.trained_lengths())}  # sampled tokens
