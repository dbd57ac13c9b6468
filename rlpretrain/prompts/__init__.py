"""Prompt templates that a method and its evaluation share (below both, so eval never imports a method)."""
