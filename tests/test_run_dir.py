"""A run directory is a record: the README's resume line continues a run exactly with its own settings,
a fresh run never writes into a used directory, Ctrl-C ends with one line naming the last checkpoint."""

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SMALL_MODEL, compose_cfg

from rlpretrain.run import Command, RunDirError, open_run
from rlpretrain.tracking import read_metrics

REPO = Path(__file__).resolve().parent.parent
PLUGINS = Path(__file__).resolve().parent / "plugins"
REWARDS = "method.rewards=[{name: info_gain},{name: interrupt_reward.stop_at, weight: 0.0}]"


def _small(model_cache) -> list[str]:
    return [*SMALL_MODEL, f"model.cache_dir={model_cache}", "method.contexts_per_step=4", "method.group_size=3",
            "rollout.max_new_tokens=8", "data.num_docs=50", "tracking.progress=false", "tracking.tensorboard=false"]


def _cli(*args, env=None):
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{PLUGINS}", **(env or {})}
    # as from a terminal: a shell's background job (CI scripts, `make test &`) starts with SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler
    return subprocess.run([sys.executable, "-m", "rlpretrain.cli", *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=REPO,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _files(run_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name != "cli.log"}


@pytest.mark.slow
def test_interrupted_seed3_run_resumes_exactly_with_its_own_settings(model_cache, tmp_path):
    mine, unbroken = tmp_path / "mine", tmp_path / "unbroken"
    first = [*_small(model_cache), "seed=3", "dump_rollouts=true", "trainer.max_steps=4", "checkpoint.every=2", REWARDS]
    # stopped by SIGINT during step 3 (the third reward call), after the checkpoint of step 2
    out = _cli(*first, f"hydra.run.dir={mine}", env={"STOP_AT_CALL": "3"})
    assert out.returncode == 130, out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1] == (
        f"interrupted: last checkpoint {mine}/checkpoints/step_000002; "
        f"continue with: rlpretrain resume=auto hydra.run.dir={mine}")
    assert "Traceback" not in out.stderr

    # the README's line, plus a longer run: seed 3, dumps, the small model and the rewards come from run.yaml
    out = _cli("resume=auto", "trainer.max_steps=5", f"hydra.run.dir={mine}")
    assert out.returncode == 0, out.stderr[-2000:]
    logged = out.stdout + out.stderr
    assert "trainer.max_steps 4 -> 5: the run continues past its planned end" in logged
    assert "seed=3" in logged and "dump_rollouts=True" in logged

    out = _cli(*[a for a in first if a != "trainer.max_steps=4"], "trainer.max_steps=5", f"hydra.run.dir={unbroken}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert [m["step"] for m in read_metrics(mine)] == [1, 2, 3, 4, 5]
    assert read_metrics(mine) == read_metrics(unbroken)
    rollouts = sorted(p.name for p in (mine / "rollouts").iterdir())
    assert rollouts == [f"step_{s:06d}.jsonl" for s in range(1, 6)]
    for name in rollouts:
        assert (mine / "rollouts" / name).read_text() == (unbroken / "rollouts" / name).read_text()

    # a fresh run into the used directory is refused, and its files stay as they were
    before = _files(mine)
    out = _cli(*_small(model_cache), "trainer.max_steps=2", f"hydra.run.dir={mine}")
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f"error: {mine} already holds a run (checkpoint {mine}/checkpoints/step_000005); continue it with "
        f"`rlpretrain resume=auto hydra.run.dir={mine}`, or choose another directory for a new run")
    assert _files(mine) == before


def _composed(run_dir: Path, *overrides: str):
    return compose_cfg(f"run_dir={run_dir}", *overrides)


def test_resume_refuses_overrides_that_change_the_run_and_restores_the_rest(tmp_path):
    first = ["seed=3", "trainer.max_steps=10", "dump_rollouts=true", "model.cache_dir=/tmp/cache-x"]
    open_run(_composed(tmp_path, *first), Command(first, {"experiment": "quickstart", "model": "tiny"}))
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n')  # the run has begun

    line = ["resume=auto"]  # the README's resume line: every setting comes back
    cfg = open_run(_composed(tmp_path, *line), Command(line, {"experiment": "quickstart"}))
    assert (cfg.seed, cfg.trainer.max_steps, cfg.dump_rollouts) == (3, 10, True)
    line = ["resume=auto", "experiment=quickstart", "model=tiny"]  # the run's own options again: nothing changes
    cfg = open_run(_composed(tmp_path, *line), Command(line, {"experiment": "quickstart", "model": "tiny"}))
    assert (cfg.seed, cfg.dump_rollouts, cfg.model.cache_dir) == (3, True, "/tmp/cache-x")

    line = ["resume=auto", "seed=4", "rollout.temperature=0.5", "tracking.progress=false"]
    with pytest.raises(RunDirError) as e:
        open_run(_composed(tmp_path, *line), Command(line, {"experiment": "quickstart"}))
    assert str(e.value) == (
        f"resume=auto: rollout.temperature=0.5 (the run has 0.7); seed=4 (the run has 3) would change what the run "
        f"in {tmp_path} computes; resume takes every setting from {tmp_path}/run.yaml: drop these overrides, "
        "or start a new run in another directory")

    line = ["resume=auto", "experiment=rpt_quickstart"]
    with pytest.raises(RunDirError, match=r"experiment=rpt_quickstart \(the run used quickstart\)"):
        open_run(_composed(tmp_path, *line), Command(line, {"experiment": "rpt_quickstart"}))

    line = ["resume=auto", "trainer.max_steps=5"]
    with pytest.raises(RunDirError, match=r"trainer.max_steps=5 \(the run has 10\)"):
        open_run(_composed(tmp_path, *line), Command(line, {"experiment": "quickstart"}))


def test_resume_with_nothing_to_resume_says_so(tmp_path):
    with pytest.raises(RunDirError) as e:
        open_run(_composed(tmp_path / "typo", "resume=auto"), Command(["resume=auto"], {}))
    assert str(e.value) == (f"resume=auto: nothing to resume in {tmp_path}/typo (no run.yaml, no checkpoint); "
                            "check the directory, or leave out resume=auto to start a new run there")
    assert not (tmp_path / "typo").exists()
