"""Kill it anywhere: every long stage SIGKILLed at points drawn by a seeded schedule, then rerun.

Each stage runs once uninterrupted (the reference, which also counts the stage's fault points:
progress advances and publishing renames, see ``synthdata/faults.py``). Then, for each scheduled
point, the stage starts again from its inputs, kills itself at that point, and is rerun to the
end. After the kill: no partial file and no half-built folder under the final name. After the
rerun: outputs byte-identical to the reference, manifests consistent with the files, and no
MLflow run left RUNNING (a killed run is closed as FAILED by the next one, or reopened and
finished when the stage resumes it).
"""

from __future__ import annotations

import random
import shutil
import signal
from pathlib import Path

import pytest
from conftest import STAGE_COMMANDS, run_stage, stage_files

from synthdata.hashing import file_sha256

pytestmark = pytest.mark.slow

SCHEDULE_SEED = 20261124
KILLS_PER_STAGE = 4

# Files whose bytes are allowed to differ from the reference, and why.
VOLATILE = {
    "adapter/adapter.json": "wall-clock training seconds",
    "base/base.json": "wall-clock training seconds",
    "synthetic/sample.json": "the MLflow run id (a new run when the killed one is not resumed)",
}


def _comparable(files: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in files.items() if k not in VOLATILE}


def _assert_manifests_match_files(root: Path) -> None:
    from synthdata.data.manifest import read_manifest

    for manifest in root.rglob("manifest.parquet"):
        folder = manifest.parent
        frame = read_manifest(folder)
        assert frame["id"].is_unique, folder
        images = {str(p.relative_to(folder)) for p in folder.rglob("*.png") if not p.name.startswith(".")}
        assert images == set(frame["relpath"]), f"{folder}: files and manifest rows differ"
        for relpath, sha in zip(frame["relpath"], frame["sha256"], strict=True):
            assert file_sha256(folder / relpath) == sha, f"{folder / relpath}: sha256 differs from its manifest row"


def _assert_no_partial_output(root: Path, outputs: list[str], reference: dict[str, str]) -> None:
    for name in outputs:
        path = root / name
        if not path.exists():
            continue
        # a temporary ``.<name>.part`` may be left beside a file a kill interrupted; the file's own name never holds part of it
        assert not [p for p in (path.rglob("*") if path.is_dir() else []) if p.name.startswith(".staging-")]
        present = stage_files(root, [name])
        # a kill after the outputs were published (during clean-up) leaves them whole
        assert _comparable(present) == {
            k: v for k, v in _comparable(reference).items() if k == name or k.startswith(f"{name}/")
        }, f"{name} half-written"


def _assert_no_dangling_runs(root: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["synthdata"])
    stages = runs[runs["tags.pipeline"] != "true"] if "tags.pipeline" in runs else runs
    assert "RUNNING" not in set(stages["status"]), stages[["tags.stage", "status"]].to_string()


def _schedule(counts: dict[str, int]) -> list[tuple[str, int]]:
    rng = random.Random(SCHEDULE_SEED)
    return [
        (stage, point)
        for stage, total in counts.items()
        for point in sorted(rng.sample(range(1, total + 1), min(KILLS_PER_STAGE, total)))
    ]


def test_every_stage_killed_at_scheduled_points_resumes_to_the_reference(stage_project):
    root, counts = stage_project
    reference = root / "reference"
    schedule = _schedule(counts)
    assert len(schedule) >= 20 and {s for s, _ in schedule} == set(STAGE_COMMANDS)
    work = root / "work"
    killed = 0
    for stage, point in schedule:
        command, outputs, state = STAGE_COMMANDS[stage]
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(reference, work, symlinks=True)  # everything upstream of the stage, finished
        for name in outputs + state:
            target = work / name
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        if stage == "utility":
            for name in state:
                (work / name).mkdir()
        expected = stage_files(reference, outputs)

        attempt = run_stage(stage, work, SYNTHDATA_FAULT_AT=str(point))
        assert attempt.returncode == -signal.SIGKILL, (
            f"{stage} at point {point}/{counts[stage]}: not killed\n{attempt.stderr[-1500:]}"
        )
        killed += 1
        _assert_no_partial_output(work, outputs, expected)

        rerun = run_stage(stage, work)
        assert rerun.returncode == 0, f"{stage} rerun after a kill at {point}: {rerun.stderr[-2000:]}"
        again = stage_files(work, outputs)
        assert set(again) == set(expected), f"{stage} at {point}: files differ {set(again) ^ set(expected)}"
        assert _comparable(again) == _comparable(expected), (
            f"{stage} killed at {point} then rerun: bytes differ from the reference"
        )
        assert not [
            p for p in work.rglob("*") if p.name.startswith((".staging-", ".old-")) and not p.name.endswith(".lock")
        ]
        assert not [p for name in outputs for p in (work / name).parent.rglob(".*.part")], (
            "temporary files left after the rerun"
        )
        _assert_manifests_match_files(work)
        _assert_no_dangling_runs(work)
    assert killed == len(schedule) >= 20
