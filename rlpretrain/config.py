"""Structured configs: the schema Hydra checks every experiment against.

Each config group in conf/ has a dataclass here, so an unknown key or a wrong type fails at start
with Hydra's message naming the key. Methods have one schema each (registered per group option).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class EmbeddedModelConfig:
    """The tiny model built locally when model.name_or_path starts with 'embedded:'."""
    hidden_size: int = 64
    num_layers: int = 4
    num_heads: int = 2  # head size 32: vLLM's CPU attention rejects smaller heads
    intermediate_size: int = 256
    max_position_embeddings: int = 512
    vocab_size: int = 320
    corpus_docs: int = 4000
    think_prob: float = 0.5   # fraction of sums preceded by a thought in the warm-up corpus
    useful_prob: float = 0.5  # of those thoughts, the fraction that are digit-wise computations
    warmup_steps: int = 400
    warmup_lr: float = 3e-3
    warmup_batch_size: int = 32
    seed: int = 1234


@dataclass
class ModelConfig:
    name_or_path: str = "embedded:tiny"
    dtype: str = "float32"
    add_think_tokens: bool = True  # add <think>/</think> as special tokens if the tokenizer lacks them
    trust_remote_code: bool = False
    cache_dir: Optional[str] = None  # where embedded models are built; default ~/.cache/rlpretrain
    embedded: EmbeddedModelConfig = field(default_factory=EmbeddedModelConfig)


@dataclass
class RolloutConfig:
    name: str = "hf"
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    stop_strings: list[str] = field(default_factory=list)
    max_batch_size: int = 256  # sequences per generate call


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
    precision: str = "fp32"


@dataclass
class AlgorithmConfig:
    adv_estimator: str = "rloo"
    policy_loss: str = "ppo_clip"
    clip_low: float = 0.2
    clip_high: float = 0.2
    loss_agg: str = "seq_mean_token_mean"
    loss_norm_const: Optional[float] = None  # for seq_mean_token_sum_norm
    kl_coef: float = 0.0
    kl_estimator: str = "k3"
    entropy_coef: float = 0.0
    ppo_epochs: int = 1
    mini_batches: int = 1  # optimizer steps per epoch over one rollout batch
    # PPO with a learned critic (adv_estimator=gae)
    critic: str = "separate"  # separate: a copy of the policy with a value head | value_head: a head on the policy's hidden states
    gamma: float = 1.0
    lam: float = 0.95
    value_clip: Optional[float] = 0.2
    critic_lr: float = 1e-5


@dataclass
class DataConfig:
    source: str = "synthetic_arithmetic"  # synthetic_arithmetic | hf
    path: Optional[str] = None  # datasets.load_dataset path: hub id, or a builder such as json/text/parquet
    name: Optional[str] = None
    data_files: Optional[Any] = None
    split: str = "train"
    text_column: str = "text"
    num_docs: int = 2000  # synthetic only
    max_docs: Optional[int] = None


@dataclass
class RewardSpec:
    name: str = MISSING  # a registered reward name or a dotted path to a function
    weight: float = 1.0


@dataclass
class RLPConfig:
    name: str = "rlp"
    contexts_per_step: int = 8  # B
    group_size: int = 4  # G
    position_sampling: str = "random"  # random | stride | low_ema_prob
    stride: int = 64
    low_ema_candidates: int = 1  # low_ema_prob: sample among the k lowest-probability positions
    min_context: int = 8
    max_context: int = 2048
    thought_open: str = "<think>"
    thought_close: str = "</think>"
    ema_decay: float = 0.999
    horizon: int = 1  # >1: discounted multi-token information gain (not in the paper; off)
    horizon_discount: float = 0.9
    rewards: list[RewardSpec] = field(default_factory=lambda: [RewardSpec(name="info_gain")])


@dataclass
class TrainerConfig:
    max_steps: int = 40


@dataclass
class CheckpointConfig:
    every: int = 0  # 0: only version 0 and the final step
    keep_last: int = 0  # 0 keeps all


@dataclass
class TrackingConfig:
    tensorboard: bool = True
    wandb: bool = False
    wandb_project: str = "rlpretrain"
    progress: bool = True


@dataclass
class Config:
    method: Any = MISSING
    model: ModelConfig = field(default_factory=ModelConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    experiment_name: str = "default"
    seed: int = 0
    device: str = "auto"
    resume: Optional[str] = None  # null | auto | a checkpoint directory
    dump_rollouts: bool = False
    run_dir: str = "${hydra:runtime.output_dir}"


METHOD_SCHEMAS = {"rlp": RLPConfig}


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    for name, schema in METHOD_SCHEMAS.items():
        cs.store(group="schema/method", name=name, node=schema)
