"""Evaluations: RPT's next-token accuracy by entropy split (`rlpretrain-eval CHECKPOINT`)."""
