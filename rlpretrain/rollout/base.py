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


@dataclass
class Completion:
    token_ids: list[int]
    logprobs: list[float]  # log-prob of each sampled token under the temperature-scaled distribution
    finish_reason: str  # "stop" (stop token or string) | "length"


@dataclass
class SyncStats:
    seconds: float = 0.0
    bytes: int = 0


class RolloutEngine(ABC):
    @abstractmethod
    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[list[Completion]]:
        """For each prompt, `params.n` completions. Deterministic for a given params.seed."""

    def load_weights(self, buckets) -> None:
        """Take new weights, bucket by bucket (rollout/sync.py); an engine that shares the learner's
        module never needs to. Raise naming the parameter rather than load half."""
        raise NotImplementedError(f"{type(self).__name__} cannot load weights")
