"""`rlpretrain [experiment=NAME] [key=value ...]`: the Hydra entry point."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from rlpretrain.config import register_configs, validate

log = logging.getLogger("rlpretrain")
# conf/ sits beside the package in the repository (installed editable, as the README does)
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"

def _user_errors():
    """Errors that mean "your input is wrong": shown as one line instead of a traceback."""
    from rlpretrain.rewards.registry import RewardError
    from rlpretrain.data.documents import DataError
    from rlpretrain.models.loading import ModelLoadError
    return (DataError, ModelLoadError, RewardError, FileNotFoundError, KeyError, ValueError)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _run(cfg: DictConfig) -> None:
    import transformers
    from hydra.core.hydra_config import HydraConfig

    from rlpretrain.jobs import run

    transformers.utils.logging.disable_progress_bar()  # our bar is the one to watch
    try:
        validate(cfg, HydraConfig.get().overrides.task)  # every knob, before any work
        summary = run(cfg)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (main): one line, not a traceback
        from rlpretrain.run import interrupted_message
        print(f"\n{interrupted_message(cfg.run_dir)}", file=sys.stderr)
        sys.exit(130)
    except _user_errors() as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
    if summary is None:
        return
    r = summary.reward
    fifths = (f"  reward mean, first fifth of steps: {r.first:+.4f}\n"
              f"  reward mean, last fifth of steps:  {r.last:+.4f}\n") if r.comparable else ""
    print(
        f"\n{cfg.experiment_name}: {summary.steps} steps in {summary.wall_seconds:.0f} s  (run dir: {summary.run_dir})\n"
        f"{fifths}  {r.verdict()}\n"
        f"  curves: rlpretrain-plot {summary.run_dir}"
    )
    for warning in summary.warnings:
        print(f"  warning: {warning}")


def main() -> None:
    register_configs()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a scheduler's stop ends like Ctrl-C
    _run()


if __name__ == "__main__":
    main()
