"""A run directory is a record of its run: `run.yaml` holds the resolved config it started with.

    fresh run (resume unset)   refused when the directory already holds a run (a checkpoint or
                               metrics.jsonl, at its top or in one sub-run below it)
    resume=auto                the record's settings come back (seed, steps, dumps, every override);
                               a command-line override that would change what the run computes is
                               refused by name; a longer trainer.max_steps is taken, and said
    resume=PATH                starts from that checkpoint; the record is written if absent

Which keys the user gave comes from Hydra's command line; without one (the Python API), every
setting that differs from the record counts as given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from rlpretrain.checkpoint import list_checkpoints

log = logging.getLogger(__name__)

RECORD = "run.yaml"
# keys that do not change what a run computes: a resumed run may take the command line's value
FREE_KEYS = ("resume", "run_dir", "tracking", "checkpoint.every", "checkpoint.keep_last", "dump_rollouts")
_ABSENT = object()


class RunDirError(ValueError):
    pass


@dataclass
class Command:
    """What the user typed: the overrides (`key=value`, `+key=...`, `group=option`) and the group choices."""
    overrides: list[str]
    choices: dict[str, str]

    @staticmethod
    def from_hydra() -> Command | None:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return None
        hc = HydraConfig.get()
        return Command(list(hc.overrides.task),
                       {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra")})

    def keys(self) -> list[str]:
        return [o.split("=", 1)[0].lstrip("+~") for o in self.overrides]


def load_run_config(run_dir: Path):
    """The config a run directory's run was started with (run.yaml; older runs: Hydra's .hydra/config.yaml)."""
    run_dir = Path(run_dir)
    if (run_dir / RECORD).exists():
        return OmegaConf.create(OmegaConf.load(run_dir / RECORD).config)
    if (run_dir / ".hydra" / "config.yaml").exists():
        return OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    return None


def write_record(run_dir: Path, config: dict, command: Command | None = None) -> None:
    record = {"config": config}
    if command is not None:
        record.update(command=command.overrides, choices=command.choices)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / f".{RECORD}.tmp"
    tmp.write_text(OmegaConf.to_yaml(OmegaConf.create(record)))
    tmp.replace(run_dir / RECORD)


def held_work(run_dir: Path) -> str | None:
    """What shows that a directory holds a run: its newest checkpoint, a metrics file or an evaluation's
    samples; None if nothing."""
    for d in [run_dir, *sorted(p for p in run_dir.iterdir() if p.is_dir())] if run_dir.is_dir() else []:
        found = list_checkpoints(d / "checkpoints")
        if found:
            return f"checkpoint {found[-1]}"
        for name in ("metrics.jsonl", "samples.jsonl"):
            if (d / name).exists() and (d / name).stat().st_size:
                return f"{d / name}"
    return None


def last_checkpoint(run_dir: Path) -> Path | None:
    found = [c for d in [run_dir, *run_dir.glob("*")] if d.is_dir() for c in list_checkpoints(d / "checkpoints")]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def resume_command(run_dir) -> str:
    return f"rlpretrain resume=auto hydra.run.dir={run_dir}"


def interrupted_message(run_dir) -> str:
    """The one line a stopped run ends with: its last checkpoint and how to continue."""
    last = last_checkpoint(Path(run_dir))
    where = f"last checkpoint {last}" if last else "no checkpoint written yet"
    return f"interrupted: {where}; continue with: {resume_command(run_dir)}"


def open_run(cfg, command: Command | None = None):
    """Check cfg against its run directory, write or restore the record; returns the config to run."""
    run_dir = Path(cfg.run_dir)
    command = command or Command.from_hydra()
    current = OmegaConf.to_container(cfg, resolve=True)
    work = held_work(run_dir)
    if cfg.resume is None:
        if work:
            raise RunDirError(f"{run_dir} already holds a run ({work}); continue it with "
                              f"`{resume_command(run_dir)}`, or choose another directory for a new run")
        write_record(run_dir, current, command)
        return cfg
    if cfg.resume != "auto" or not (run_dir / RECORD).exists():
        if cfg.resume == "auto" and not work:
            raise RunDirError(f"resume=auto: nothing to resume in {run_dir} (no {RECORD}, no checkpoint); "
                              "check the directory, or leave out resume=auto to start a new run there")
        if cfg.resume == "auto":
            log.warning("%s has no %s (an older run): resuming with this command's settings", run_dir, RECORD)
        if not (run_dir / RECORD).exists():
            write_record(run_dir, current, command)
        return cfg
    record = OmegaConf.to_container(OmegaConf.load(run_dir / RECORD))
    cfg = restore(cfg, current, record, command, run_dir)
    write_record(run_dir, OmegaConf.to_container(cfg, resolve=True),
                 Command(record.get("command", []), record.get("choices", {})))
    return cfg


def restore(cfg, current: dict, record: dict, command: Command | None, run_dir: Path):
    """The record's config, with the command line's changes that leave the computation as it was."""
    # a group option (experiment=..., model=...) is checked against the run's choice below, not key by key
    given = [k for k in command.keys() if k not in command.choices] if command is not None else None

    def is_given(key: str) -> bool:
        return given is None or any(key == g or key.startswith(g + ".") for g in given)

    now, then = _flatten(current), _flatten(record["config"])
    refused, restored, told = [], [], []
    if command is not None:  # a group option other than the run's (experiment=..., algorithm=...)
        for group in set(command.keys()) & set(command.choices):
            old = record.get("choices", {}).get(group)
            if old is not None and old != command.choices[group]:
                refused.append(f"{group}={command.choices[group]} (the run used {old})")
    for key in sorted(now.keys() | then.keys()):
        new, old = now.get(key, _ABSENT), then.get(key, _ABSENT)
        if new == old or key in ("resume", "run_dir"):
            continue
        if not is_given(key):
            if old is not _ABSENT:
                restored.append((key, old))
        elif any(key == f or key.startswith(f + ".") for f in FREE_KEYS):
            told.append(f"{key}={_show(new)}")
        elif key == "trainer.max_steps" and isinstance(new, int) and isinstance(old, int) and new > old:
            told.append(f"trainer.max_steps {old} -> {new}: the run continues past its planned end"
                        + (f" (learner.lr_schedule={current['learner']['lr_schedule']} is laid out over the new length)"
                           if current.get("learner", {}).get("lr_schedule", "constant") != "constant" else ""))
        else:
            refused.append(f"{key}={_show(new)} (the run has {_show(old)})")
    if refused:
        raise RunDirError(f"resume=auto: {'; '.join(refused)} would change what the run in {run_dir} computes; "
                          f"resume takes every setting from {run_dir / RECORD}: drop these overrides, "
                          "or start a new run in another directory")
    cfg = cfg.copy()
    for key, value in restored:
        OmegaConf.update(cfg, key, value, merge=True, force_add=True)  # merge: a list of dicts is checked against its schema
    if restored:
        log.info("resume=auto: the run's own settings, from %s: %s", run_dir / RECORD,
                 ", ".join(f"{k}={_show(v)}" for k, v in restored))
    for line in told:
        log.info("resume=auto: %s", line)
    return cfg


def _flatten(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


def _show(value) -> str:
    return "(absent)" if value is _ABSENT else "null" if value is None else str(value)
