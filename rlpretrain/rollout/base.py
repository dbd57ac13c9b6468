"""The rollout engine interface: prompts in, sampled completions with log-probs out.

The loop only sees this interface; backends (hf here, vllm in its own module) register by name.
Weights reach an engine through a transport (rollout/sync.py), not through the engine itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from rlpretrain.registry import Registry

ROLLOUT_ENGINES: Registry = Registry("rollout engine")


@dataclass
class SamplingParams:
    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1  # samples per prompt
    stop_token_ids: list[int] = field(default_factory=list)  # kept in the completion when hit
    stop_strings: list[str] = field(default_factory=list)  # completion ends with the token that completes one
    seed: int = 0
    # Teacher-forced continuations, one per prompt, for engines with `scores_suffixes` (RLP's target
    # after `</think>`): after each completion the engine feeds `suffix_close_id` (unless the completion
    # ends with it) and then the prompt's suffix, and returns the suffix tokens' log-probs at
    # temperature 1 in `Completion.suffix_logprobs`. The context is then run once, for sampling and
    # scoring both.
    suffix_ids: list[list[int]] | None = None
    suffix_close_id: int | None = None


@dataclass
class Completion:
    token_ids: list[int]
    logprobs: list[float]  # log-prob of each sampled token under the temperature-scaled distribution
    finish_reason: str  # "stop" (stop token or string) | "length"
    suffix_logprobs: list[float] | None = None  # with SamplingParams.suffix_ids: log p of each suffix token


@dataclass
class SyncStats:
    seconds: float = 0.0
    bytes: int = 0


class RolloutEngine(ABC):
    scores_suffixes: bool = False  # takes SamplingParams.suffix_ids

    @abstractmethod
    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[list[Completion]]:
        """For each prompt, `params.n` completions. Deterministic for a given params.seed."""

    def check_params(self, params: SamplingParams, n_prompts: int) -> None:
        if params.suffix_ids is not None and len(params.suffix_ids) != n_prompts:
            raise ValueError(f"suffix_ids has {len(params.suffix_ids)} suffixes for {n_prompts} prompts")
        if params.suffix_ids is not None and not self.scores_suffixes:
            raise ValueError(f"{type(self).__name__} does not score suffixes (SamplingParams.suffix_ids); "
                             "score them with a TeacherForcedScorer instead")
        if params.suffix_ids is not None and params.suffix_close_id is None:
            raise ValueError("SamplingParams.suffix_ids needs suffix_close_id")

    def load_weights(self, buckets) -> None:
        """Take new weights, bucket by bucket (rollout/sync.py); an engine that shares the learner's
        module never needs to. Raise naming the parameter rather than load half."""
        raise NotImplementedError(f"{type(self).__name__} cannot load weights")
