"""Two processes on one output folder: one proceeds, the other is refused naming the lock holder;
a lock left by a killed process is found stale and cleared by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_image_tree

pytestmark = pytest.mark.slow

SYNTHDATA = str(Path(sys.executable).parent / "synthdata")


def _ingest(recipe: Path, out: Path, env: dict, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [SYNTHDATA, "data", "ingest", "--recipe", str(recipe), "--out", str(out)],
        env={**env, **extra},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def setup(tmp_path):
    tree = make_image_tree(tmp_path / "tree", {"a": 1500, "b": 1500})
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: big\ndomain: generic\ndata:\n  source: imagefolder\n  path: {tree}\n")
    return recipe, {**os.environ, "SYNTHDATA_MLRUNS": str(tmp_path / "mlruns")}


def test_a_second_writer_is_refused_naming_the_holder(setup, tmp_path):
    recipe, env = setup
    out = tmp_path / "d"
    first = _ingest(recipe, out, env)
    lock = tmp_path / ".d.lock"
    deadline = time.monotonic() + 120
    while not (lock.is_file() and lock.read_text()) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.poll() is None, "the first writer finished before the second could try"
    second = _ingest(recipe, out, env)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 1
    [line] = err.strip().splitlines()
    assert line.startswith(f"error: {out} is being written by pid {first.pid} on {os.uname().nodename} since ")
    assert line.endswith(
        f"(synthdata data ingest --recipe {recipe} --out {out}); wait for it or stop it (lock file {lock})"
    )
    first.communicate(timeout=300)
    assert first.returncode == 0 and out.is_dir() and not lock.exists()


def test_a_stale_lock_from_a_killed_writer_is_cleared(setup, tmp_path):
    recipe, env = setup
    out = tmp_path / "d"
    killed = _ingest(recipe, out, env, SYNTHDATA_FAULT_AT="200")
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL
    lock = tmp_path / ".d.lock"
    assert f'"pid": {killed.pid}' in lock.read_text()  # the file outlives the process; its flock does not
    rerun = _ingest(recipe, out, env)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert f"cleared a stale lock on {out} left by pid {killed.pid}" in err
    assert out.is_dir() and not lock.exists()
