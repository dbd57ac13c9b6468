"""The rollout group's schema: sampling settings every engine takes, and vLLM's own (`rollout.vllm`).

A module of its own because both engines (hf.py, vllm.py) read it and the group nests vLLM's node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from rlpretrain.checks import require


@dataclass
class VLLMConfig:
    """rollout=vllm (rlpretrain/rollout/vllm.py)."""
    gpu_memory_utilization: float = 0.5  # colocated with the learner: vLLM's share of each GPU
    sleep: bool = True  # GPUs: free vLLM's memory while the learner trains (no sleep mode on the CPU build)
    sleep_level: int = 1  # 1: weights to host memory, KV cache dropped | 2: both dropped (reloaded every sync anyway)
    tensor_parallel_size: int = 1
    dtype: str = "auto"  # the model's own
    max_model_len: Optional[int] = None
    enforce_eager: bool = False  # true: no CUDA graphs (faster start, slower decode)

    def __post_init__(self):
        require(0 < self.gpu_memory_utilization <= 1, "gpu_memory_utilization", "in (0, 1]",
                self.gpu_memory_utilization)
        require(self.sleep_level in (1, 2), "sleep_level", "1 or 2", self.sleep_level)
        require(self.tensor_parallel_size >= 1, "tensor_parallel_size", ">= 1", self.tensor_parallel_size)


@dataclass
class RolloutConfig:
    name: str = "hf"
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    stop_strings: list[str] = field(default_factory=list)
    max_batch_size: int = 256  # sequences per generate call
    vllm: VLLMConfig = field(default_factory=VLLMConfig)

    def __post_init__(self):
        # the update scores completions at the sampling temperature (logits / T): T = 0 has no distribution
        require(self.temperature > 0, "temperature", "> 0 (RL trains on the sampling distribution; "
                "greedy decoding has none)", self.temperature)
        require(0 < self.top_p <= 1, "top_p", "in (0, 1]", self.top_p)
        require(self.max_new_tokens >= 1, "max_new_tokens", ">= 1", self.max_new_tokens)
        require(self.max_batch_size >= 1, "max_batch_size", ">= 1", self.max_batch_size)
