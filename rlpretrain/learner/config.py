"""The learner's schema (`learner` group): optimizer, micro-batching, precision, efficiency options,
DeepSpeed and LoRA. Plain dataclasses, kept beside the learner and assembled by `rlpretrain.config`."""

from __future__ import annotations

from dataclasses import dataclass, field

from rlpretrain.checks import require


@dataclass
class DeepSpeedConfig:
    """learner=deepspeed (rlpretrain/learner/deepspeed.py)."""
    zero_stage: int = 2  # 1: optimizer states sharded | 2: + gradients | 3: + parameters
    offload_optimizer: bool = False  # optimizer states and step on the CPU
    offload_params: bool = False  # stage 3 only: parameters on the CPU between uses


@dataclass
class LoraConfig:
    """LoRA adapters via peft, for either learner (rlpretrain/learner/lora.py); r=0 trains all weights."""
    r: int = 0
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                               "gate_proj", "up_proj", "down_proj"])

    def __post_init__(self):
        require(self.r >= 0, "r", ">= 0 (0: no adapters)", self.r)
        require(0 <= self.dropout < 1, "dropout", "in [0, 1)", self.dropout)


@dataclass
class LearnerConfig:
    name: str = "torch"
    lr: float = 1e-6
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    grad_clip: float = 1.0
    max_tokens_per_micro_batch: int = 16384
    micro_batch_min_fill: float = 0.5  # start a new micro-batch when rows get shorter than this x the longest
    precision: str = "fp32"
    # efficiency options, all off by default (learner/efficiency.py; docs/scale.md, "Learner efficiency options")
    logprob_chunk_tokens: int = 0  # > 0: log-probs through the LM head this many tokens at a time; 0: whole logits
    padding_free: bool = False  # pack a micro-batch's rows into one, positions restarting per row
    gradient_checkpointing: bool = False
    liger_kernel: bool = False  # Liger's Triton kernels (CUDA only; pip install 'rlpretrain[gpu]')
    compile: bool = False  # torch.compile each decoder layer
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)

    def __post_init__(self):
        require(self.lr >= 0, "lr", ">= 0", self.lr)
        require(self.warmup_steps >= 0, "warmup_steps", ">= 0", self.warmup_steps)
        require(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "in [0, 1]", self.min_lr_ratio)
        require(0 <= self.beta1 < 1, "beta1", "in [0, 1)", self.beta1)
        require(0 <= self.beta2 < 1, "beta2", "in [0, 1)", self.beta2)
        require(self.max_tokens_per_micro_batch >= 1, "max_tokens_per_micro_batch", ">= 1",
                self.max_tokens_per_micro_batch)
        require(0 <= self.micro_batch_min_fill <= 1, "micro_batch_min_fill", "in [0, 1]", self.micro_batch_min_fill)
