"""Absolute Zero (method=azr): propose/solve self-play on code tasks, checked in the sandbox. docs/azr.md."""

from rlpretrain.methods.azr.method import AZR

__all__ = ["AZR"]
