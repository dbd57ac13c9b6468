"""The held-out evaluation refuses a run directory that has no frozen AZR tasks, saying why."""

import pytest

from rlpretrain.methods.azr.heldout import evaluate_run


def test_run_without_heldout_tasks_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an AZR run with held-out tasks \\(method.heldout_per_type > 0\\)"):
        evaluate_run(tmp_path)
