"""AZR's typed config (method=azr). Paper values (AZR, arXiv 2505.03335, Table 3) are set, each
cited, in conf/experiment/azr_base_7b.yaml and azr_coder_7b.yaml; the defaults here are small."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from rlpretrain.methods.azr.ast_checks import BANNED_MODULES


@dataclass
class AZRSandboxConfig:
    workers: int = 2
    mode: str = "auto"  # auto | bwrap | unshare | rlimits (sandbox/README.md)
    timeout: float = 5.0  # seconds per execution (wall clock)
    memory_mb: int = 512


@dataclass
class AZRConfig:
    name: str = "azr"
    batch_per_task_role: int = 4  # B: samples per (task type x role) and step (paper: 64)
    task_types: list[str] = field(default_factory=lambda: ["deduction", "abduction", "induction"])
    references: int = 6  # K reference tasks in a deduction/abduction proposer prompt (paper: 6)
    learnability_rollouts: int = 8  # n solver rollouts that estimate a proposal's learnability (paper: 8)
    induction_inputs: int = 10  # inputs an induction proposer writes (paper: 10); half are shown
    min_induction_pairs: int = 2  # valid input/output pairs an induction task needs (one shown, one hidden)
    determinism_runs: int = 2  # j separate executions that must agree (paper: 2)
    seed_buffer_size: int = 16  # valid tasks per buffer before training (paper: 64 x 4 = 256)
    seed_max_rounds: int = 20  # proposal rounds the seeding may take before it fails with an error
    seed_batch_per_type: Optional[int] = None  # proposals per task type in a seeding round (None: batch_per_task_role)
    heldout_per_type: int = 0  # tasks per type set aside from the seeding's valid proposals, frozen, for evaluation
    buffer_cap: int = 16384  # tasks per buffer; the oldest is evicted beyond it (paper: 16,384)
    zero_reward: str = "paper"  # a valid proposal with learnability 0 gets 0 (paper) | -0.5 (official code)
    prompt_format: str = "r1"  # r1: the R1 think template as plain text | chat: in the chat template | none
    think: bool = True  # responses follow <think>…</think><answer>…</answer>; false: the whole response is the answer
    scaffold_blocks: bool = False  # think=false only: the fence of every block is written for the model (small models; generation.py)
    max_prompt_tokens: int = 6144  # longer prompts keep their last tokens (paper: 6144)
    banned_modules: list[str] = field(default_factory=lambda: list(BANNED_MODULES))
    sandbox: AZRSandboxConfig = field(default_factory=AZRSandboxConfig)
