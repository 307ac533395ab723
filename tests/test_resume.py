"""A killed write resumes without duplicates or partial files and ends byte-identical."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_image_tree

from synthdata.config.recipe import SplitSettings
from synthdata.data.ingest import ingest
from synthdata.data.manifest import read_manifest
from synthdata.data.sources import get_source

SYNTHDATA = str(Path(sys.executable).parent / "synthdata")


def _tree_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class _Crash(Exception):
    pass


def test_crash_mid_write_then_rerun_resumes(image_tree, tmp_path, monkeypatch):
    source = get_source("imagefolder", path=str(image_tree), dataset="d")
    reference = tmp_path / "ref" / "d"
    ingest(source, reference, split=SplitSettings())

    real_replace, calls = os.replace, {"n": 0}

    def crashing_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 25:
            raise _Crash
        return real_replace(src, dst)

    target = tmp_path / "run" / "d"
    monkeypatch.setattr(os, "replace", crashing_replace)
    with pytest.raises(_Crash):
        ingest(source, target, split=SplitSettings())
    monkeypatch.setattr(os, "replace", real_replace)
    assert not target.exists(), "a dataset was published by a crashed run"
    staged = [p for p in (target.parent / ".staging-d").rglob("*.png")]
    assert len(staged) == 24

    writes = {"n": 0}
    real_write = Path.write_bytes

    def counting_write(self, data):
        writes["n"] += self.name.endswith(".png.part")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", counting_write)
    ingest(source, target, split=SplitSettings())
    assert writes["n"] == 62 - 24, "images already staged were written again"
    assert _tree_files(target) == _tree_files(reference)
    assert not (target.parent / ".staging-d").exists()


def test_changed_settings_discard_the_stale_staging(image_tree, tmp_path, monkeypatch):
    source = get_source("imagefolder", path=str(image_tree), dataset="d")
    staging = tmp_path / ".staging-d"
    staging.mkdir()
    (staging / ".build-key").write_text("another build")
    (staging / "images").mkdir()
    (staging / "images" / "stale.png").write_bytes(b"stale")
    ingest(source, tmp_path / "d", split=SplitSettings())
    assert not (tmp_path / "d" / "images" / "stale.png").exists()
    assert len(read_manifest(tmp_path / "d")) == 62


@pytest.mark.slow
def test_sigkill_during_ingest_then_rerun_is_identical(tmp_path):
    tree = make_image_tree(tmp_path / "tree", {"a": 2500, "b": 2500})
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: big\ndomain: generic\ndata:\n  source: imagefolder\n  path: {tree}\n")
    env = {**os.environ, "SYNTHDATA_MLRUNS": str(tmp_path / "mlruns")}
    reference = tmp_path / "ref" / "big"
    subprocess.run(
        [SYNTHDATA, "data", "ingest", "--recipe", str(recipe), "--out", str(reference)],
        env=env,
        check=True,
        capture_output=True,
    )

    target = tmp_path / "run" / "big"
    staging = target.parent / ".staging-big"
    process = subprocess.Popen(
        [SYNTHDATA, "data", "ingest", "--recipe", str(recipe), "--out", str(target)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if staging.exists() and sum(1 for _ in staging.rglob("*.png")) >= 300:
            break
        time.sleep(0.005)
    assert process.poll() is None, "ingest finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not target.exists()
    subprocess.run(
        [SYNTHDATA, "data", "ingest", "--recipe", str(recipe), "--out", str(target)],
        env=env,
        check=True,
        capture_output=True,
    )
    assert _tree_files(target) == _tree_files(reference)
    assert not staging.exists() and not list(target.rglob("*.part"))
