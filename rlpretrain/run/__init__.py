"""The run skeleton shared by the RL loop and the next-token trainer, and the run directory's record."""

from rlpretrain.run.record import (RECORD, Command, RunDirError, interrupted_message, load_run_config,
                                   open_run)
from rlpretrain.run.skeleton import Run

__all__ = ["RECORD", "Command", "Run", "RunDirError", "interrupted_message", "load_run_config", "open_run"]
