"""The run's config: the groups' schemas assembled into one `Config`, registered with Hydra.

Each schema lives beside the component it configures (RLPConfig in methods/rlp.py, SyncConfig in
rollout/sync.py, LearnerConfig in learner/config.py, ...); this module only assembles them, so an
unknown key or a wrong type fails at start with Hydra's message naming the key, and `validate`
checks every value once before a job runs.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from rlpretrain.algorithms.config import AlgorithmConfig
from rlpretrain.checkpoint import CheckpointConfig
from rlpretrain.checks import ConfigError, require
from rlpretrain.data.documents import DataConfig
from rlpretrain.eval.config import EvalConfig
from rlpretrain.launch.placement import LauncherConfig
from rlpretrain.learner.config import LearnerConfig
from rlpretrain.methods.azr.config import AZRConfig
from rlpretrain.methods.rlp import RLPConfig
from rlpretrain.methods.rpt_config import RPTConfig
from rlpretrain.methods.tpt.generate import TPTGenerateConfig
from rlpretrain.methods.tpt.ntp import NTPConfig, num_steps
from rlpretrain.methods.tpt.pipeline import TPTPipelineConfig
from rlpretrain.models.loading import ModelConfig
from rlpretrain.rollout.config import RolloutConfig
from rlpretrain.rollout.sync import SyncConfig
from rlpretrain.tracking import TrackingConfig


@dataclass
class TrainerConfig:
    max_steps: int = 40
    eval_every: int = 0  # > 0: the `eval` suite on the current weights every this many steps (and at the end)

    def __post_init__(self):
        require(self.max_steps >= 1, "max_steps", ">= 1", self.max_steps)
        require(self.eval_every >= 0, "eval_every", ">= 0", self.eval_every)


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


# renamed keys -> their new names, for the unknown-key error (RLP's thought tags took the name every method uses)
RENAMED = {"thought_open": "think_open", "thought_close": "think_close"}
METHOD_SCHEMAS = {"rlp": RLPConfig, "rpt": RPTConfig, "tpt_generate": TPTGenerateConfig, "ntp": NTPConfig,
                  "tpt_pipeline": TPTPipelineConfig, "azr": AZRConfig}


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    for name, schema in METHOD_SCHEMAS.items():
        cs.store(group="schema/method", name=name, node=schema)


def validate(cfg: DictConfig, overrides: Sequence[str] = ()) -> None:
    """Every knob checked once, before a job runs: no key outside its schema (Hydra lets a `+` override
    add one), every value in its range (the schemas' `__post_init__`), and no override the user typed
    (`overrides`, as on the command line) that another setting would silently overrule."""
    _check_node(cfg, "")
    typed = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    if "trainer.max_steps" in typed:
        for path in ("method", "method.train"):  # ntp, and the pipeline's training arms
            budget = OmegaConf.select(cfg, f"{path}.token_budget", default=None)
            if budget is not None:
                steps = num_steps(cfg, OmegaConf.select(cfg, path))
                raise ConfigError("trainer.max_steps", f"was given ({cfg.trainer.max_steps}), but {path}.token_budget="
                                  f"{budget} sets the number of steps ({steps}); give one of them (add "
                                  f"{path}.token_budget=null to train {cfg.trainer.max_steps} steps)")


def _check_node(node, path: str) -> None:
    if isinstance(node, ListConfig):
        for i in range(len(node)):
            child = node._get_node(i)
            if isinstance(child, (DictConfig, ListConfig)) and not child._is_none():
                _check_node(child, f"{path}.{i}")
        return
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return  # a free-form dict (e.g. method.architecture)
    names = [f.name for f in dataclasses.fields(schema)]
    prefix = f"{path}." if path else ""
    for key in node.keys():
        if key not in names:
            near = [RENAMED[key]] if key in RENAMED else difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {prefix}{near[0]}?" if near else ""
            raise ConfigError(f"{prefix}{key}", f"is not a setting of {schema.__name__}{hint} Its keys: "
                              f"{', '.join(names)}. (A '+' override adds a key; the project's groups take only "
                              "their schema's keys.)")
    for key in names:
        child = node._get_node(key)
        if isinstance(child, (DictConfig, ListConfig)) and not child._is_none() and not child._is_missing():
            _check_node(child, prefix + key)
    check = getattr(schema, "__post_init__", None)
    if check is not None:
        try:
            check(node)  # the dataclass's own checks, run on the composed node
        except ConfigError as e:
            raise ConfigError(prefix + e.key, e.problem) from None
