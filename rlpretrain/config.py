"""Structured configs: the schema Hydra checks every experiment against.

Each config group in conf/ has a dataclass here, so an unknown key or a wrong type fails at start
with Hydra's message naming the key. Methods have one schema each (registered per group option).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from rlpretrain.eval.config import EvalConfig


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
    think_token_init: str = "pieces"  # added tokens' embeddings: pieces (mean of the tag's old pieces) | mean (of all)
    gguf_file: Optional[str] = None  # a local GGUF (path or pkg:MODULE/FILE), converted once; name_or_path is then a label
    trust_remote_code: bool = False
    cache_dir: Optional[str] = None  # where embedded/GGUF models are built; default ~/.cache/rlpretrain
    embedded: EmbeddedModelConfig = field(default_factory=EmbeddedModelConfig)


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


@dataclass
class RolloutConfig:
    name: str = "hf"
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    stop_strings: list[str] = field(default_factory=list)
    max_batch_size: int = 256  # sequences per generate call
    vllm: VLLMConfig = field(default_factory=VLLMConfig)


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


@dataclass
class AlgorithmConfig:
    adv_estimator: str = "rloo"
    adv_weighting: str = "sample"  # group mean/std over samples | token: over completion tokens (not rloo, gae)
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
    # engine-learner mismatch (rlpretrain/algorithms/rollout_correction.py): none | tis (truncated) | mis (masked)
    rollout_correction: str = "none"
    rollout_correction_cap: float = 2.0  # C > 1: TIS weights are min(ratio, C); MIS drops ratios above C
    rollout_correction_level: str = "token"  # token | sequence (one ratio per sequence: the product of its tokens')
    # PPO with a learned critic (adv_estimator=gae)
    critic: str = "separate"  # separate: a copy of the policy with a value head | value_head: a head on the policy's hidden states
    gamma: float = 1.0
    lam: float = 0.95
    value_clip: Optional[float] = 0.2
    critic_lr: float = 1e-5


@dataclass
class DataConfig:
    source: str = "synthetic_arithmetic"  # synthetic_arithmetic | hf | champ | humaneval (data/packaged.py)
    path: Optional[str] = None  # datasets.load_dataset path: hub id, or a builder such as json/text/parquet
    name: Optional[str] = None
    data_files: Optional[Any] = None
    split: str = "train"  # champ/humaneval: train | test (held out by id) | all (train, then test)
    text_column: str = "text"
    num_docs: int = 2000  # synthetic only
    max_docs: Optional[int] = None


@dataclass
class RewardSpec:
    name: str = MISSING  # a registered reward name or a dotted path to a function
    weight: float = 1.0
    conversational: bool = False  # pass prompts/completions as chat messages (TRL's conversational form)


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
    thought_end_tokens: Optional[list[str]] = None  # also end a thought; null: a chat model's EOS + end-of-turn tokens, none without a chat template
    thought_prompt: str = "none"  # none: context then <think> | chat: in the chat template, with RLP v2's system prompt
    ema_decay: float = 0.999
    horizon: int = 1  # >1: discounted multi-token information gain (not in the paper; off)
    horizon_discount: float = 0.9
    rewards: list[RewardSpec] = field(default_factory=lambda: [RewardSpec(name="info_gain")])


@dataclass
class TPTGenerateConfig:
    """TPT's offline job: a thinking trajectory per document (rlpretrain/methods/tpt/generate.py).

    Defaults are the paper's (arXiv 2509.20186 v4, Setup): 2k-token documents, at most 8k thinking
    tokens, temperature 0.6, top-p 0.9, stop at </think>. The engine is `rollout.name`; its
    batch limit is `rollout.max_batch_size` (the rollout group's sampling fields are not used).
    """
    name: str = "tpt_generate"
    prompt: str = "thinking"  # thinking | random_focus (rlpretrain/methods/tpt/prompts.py)
    max_doc_tokens: int = 2048  # documents truncated on a token boundary
    max_thinking_tokens: int = 8192
    temperature: float = 0.6
    top_p: float = 0.9
    think_open: str = "<think>"  # appended to the prompt: generation starts inside a thought
    think_close: str = "</think>"  # stop token/string
    use_chat_template: bool = True  # the generator's chat template, when its tokenizer has one
    shard_size: int = 1000  # documents per output shard (the unit of resume and of work splitting)
    batch_size: int = 16  # documents per generate call (the unit of in-shard progress)
    num_workers: int = 1  # shard i belongs to worker i % num_workers
    worker_index: int = 0
    output_dir: Optional[str] = None  # default: <run_dir>/thinking
    source_name: Optional[str] = None  # label per row; default: data.path or data.source
    generator_name: Optional[str] = None  # recorded per row; default: model.name_or_path


@dataclass
class NTPSourceConfig:
    """One source of a next-token mixture: a document dataset, optionally with a thinking column."""
    label: str = "data"
    weight: float = 1.0
    source: str = "hf"  # hf | synthetic_arithmetic | champ | humaneval | tpt (a tpt_generate output directory in `path`)
    path: Optional[str] = None
    data_name: Optional[str] = None  # datasets config name
    data_files: Optional[Any] = None
    split: str = "train"
    text_column: str = "text"
    thinking_column: Optional[str] = None  # default "thinking" for source=tpt, none otherwise
    num_docs: int = 2000  # synthetic only
    max_docs: Optional[int] = None
    seed: int = 0  # synthetic only: which corpus (offset from the run seed)


@dataclass
class NTPConfig:
    """Next-token training on packed [document; thinking] samples: TPT, and with thinking off, CPT."""
    name: str = "ntp"
    sources: list[NTPSourceConfig] = field(default_factory=list)  # empty: `data` as one plain source
    weight_mode: str = "per_sample"  # per_sample: each document of a source weighs `weight` | proportion
    thinking: bool = True  # false: thinking columns are ignored (the continued-pretraining baseline)
    template: str = "{document}<think>{thinking}</think>"  # a sample with thinking; {document} alone without
    loss_on: str = "all"  # all | thinking (SFT-style: the thinking and the closing tag only)
    max_doc_tokens: Optional[int] = None  # truncate documents (on a token boundary) before joining
    seq_len: int = 8192
    batch_size: int = 512  # packed sequences per optimizer step
    token_budget: Optional[int] = None  # set: steps = ceil(budget / (batch_size * seq_len)), overriding trainer.max_steps
    packing: str = "wrap"  # wrap: concatenate and cut | no_split: samples start a sequence unless longer than it
    separator: str = "eos"  # after every sample: eos | none
    init: str = "pretrained"  # pretrained: model.name_or_path's weights | scratch: its architecture, fresh weights
    architecture: dict[str, Any] = field(default_factory=dict)  # config overrides for init=scratch
    eval_source: Optional[NTPSourceConfig] = None  # held-out documents (plain; loss on document tokens)
    eval_docs: int = 256
    eval_every: int = 0  # 0: only at the start and the end
    eval_dedup: bool = True  # drop held-out documents that also occur in a training source


@dataclass
class TPTPipelineConfig:
    """Generate thinking for `data`, then train one model per arm at one token budget, then compare."""
    name: str = "tpt_pipeline"
    generate: TPTGenerateConfig = field(default_factory=TPTGenerateConfig)
    train: NTPConfig = field(default_factory=NTPConfig)
    arms: list[str] = field(default_factory=lambda: ["vanilla", "tpt"])  # vanilla: thinking off


@dataclass
class RPTEvalConfig:
    """Next-token accuracy on held-out positions (RPT Table 1), run by the rpt runner before/after training."""
    before: bool = False
    after: bool = False
    holdout_docs: int = 0  # the last N documents of the corpus are held out of training for evaluation
    num_positions: int = 200  # held-out positions drawn among those above the lowest threshold
    thresholds: list[float] = field(default_factory=lambda: [0.5, 1.0, 1.5])  # easy / medium / hard (nested)
    modes: list[str] = field(default_factory=lambda: ["standard", "reasoning"])
    samples: int = 1  # reasoning: sampled responses per position (accuracy is their mean; pass@k if > 1)
    temperature: Optional[float] = None  # reasoning; null: rollout.temperature
    max_new_tokens: Optional[int] = None  # reasoning; null: rollout.max_new_tokens


@dataclass
class RPTFormatWarmupConfig:
    """Optional next-token warm-up of the starting model on RPT-formatted responses (for the tiny model,
    which has never seen the prompt or \\boxed{}). Off (steps 0) unless an experiment sets it."""
    steps: int = 0
    examples: int = 2000
    lr: float = 1.0e-3
    batch_size: int = 16
    useful_prob: float = 0.5  # arithmetic contexts: digit-wise thought vs filler (as the embedded build)


@dataclass
class RPTConfig:
    name: str = "rpt"
    contexts_per_step: int = 16  # B (paper: 256)
    group_size: int = 8  # G (paper: 8)
    template: str = "v0"  # v0 | candidates | concise (rlpretrain/prompts/rpt.py)
    min_context: int = 8
    max_context: int = 4096  # context tokens kept before t
    target_tokens: int = 32  # continuation tokens a prediction may match (prefix matching)
    think_open: str = "<think>"
    think_close: str = "</think>"
    rewards: list[RewardSpec] = field(default_factory=lambda: [RewardSpec(name="prefix_match")])
    # hard-position filter: proxy top-k entropy
    entropy_filter: bool = True
    entropy_threshold: float = 0.5  # the paper gives none; positions with H < threshold are dropped
    entropy_top_k: int = 16
    proxy_model: Optional[str] = None  # null: the policy's initial model
    entropy_cache_dir: Optional[str] = None  # null: <model.cache_dir or ~/.cache/rlpretrain>/rpt-entropy/<key>
    entropy_shard_docs: int = 256
    entropy_window: int = 2048
    # dynamic sampling (drop groups with all-equal rewards, refill): from this step on; null: never
    dynamic_sampling_from_step: Optional[int] = None
    dynamic_sampling_max_rounds: int = 4
    eval: RPTEvalConfig = field(default_factory=RPTEvalConfig)
    format_warmup: RPTFormatWarmupConfig = field(default_factory=RPTFormatWarmupConfig)


@dataclass
class SyncConfig:
    """Weight sync learner -> rollout engine (rlpretrain/rollout/sync.py)."""
    transport: str = "auto"  # auto | shared | reload | broadcast
    bucket_mb: float = 256.0  # tensors per transfer, at most this many MiB (one call per bucket)
    timeout_s: float = 600.0  # a transfer that takes longer raises, naming the parameter
    backend: str = "auto"  # broadcast: auto (nccl when learner and workers hold whole GPUs) | gloo | nccl


@dataclass
class LauncherConfig:
    """Where the learner ranks and rollout workers run (rlpretrain/launch/)."""
    name: str = "local"  # local: this process | ray: Ray actors, on one machine or a cluster
    address: Optional[str] = None  # ray: an existing cluster ("auto", "ray://host:10001"); null: start a local one
    num_learners: int = 1  # learner ranks (data parallel; learner=deepspeed when more than one)
    num_rollout_workers: int = 1  # separate engines; prompts are split between them
    learner_cpus: float = 1.0
    learner_gpus: Optional[float] = None  # null: an equal share of the GPUs over all actors, at most 1 (launch/ray.py)
    worker_cpus: float = 1.0
    worker_gpus: Optional[float] = None
    verify_sync: bool = False  # after every sync, compare a checksum of each worker's weights with the learner's


@dataclass
class TrainerConfig:
    max_steps: int = 40


@dataclass
class CheckpointConfig:
    every: int = 0  # 0: only version 0 and the final step
    keep_last: int = 0  # 0 keeps all
    dtype: str = "float32"  # weights on disk: float32 (exact resume) | bfloat16 | float16 (half the size)
    optimizer: bool = True  # false: no optimizer state (a third of the size; resume restarts Adam's moments)


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
    sync: SyncConfig = field(default_factory=SyncConfig)
    launcher: LauncherConfig = field(default_factory=LauncherConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    experiment_name: str = "default"
    seed: int = 0
    device: str = "auto"
    resume: Optional[str] = None  # null | auto | a checkpoint directory
    dump_rollouts: bool = False
    run_dir: str = "${hydra:runtime.output_dir}"
    job: Optional[str] = None  # null: the method's job (rlpretrain/jobs/); `eval`: evaluate on the `eval` suite
    eval: EvalConfig = field(default_factory=EvalConfig)


METHOD_SCHEMAS = {"rlp": RLPConfig, "tpt_generate": TPTGenerateConfig, "ntp": NTPConfig,
                  "tpt_pipeline": TPTPipelineConfig}
METHOD_SCHEMAS["rpt"] = RPTConfig


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    from rlpretrain.methods.azr.config import AZRConfig  # here: the methods package imports this module
    for name, schema in {**METHOD_SCHEMAS, "azr": AZRConfig}.items():
        cs.store(group="schema/method", name=name, node=schema)
