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

import os
import random
import shutil
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from conftest import make_image_tree
from synthdata.hashing import file_sha256

pytestmark = pytest.mark.slow

SYNTHDATA = str(Path(sys.executable).parent / "synthdata")
SCHEDULE_SEED = 20261124
KILLS_PER_STAGE = 4

# stage: (command, outputs it writes, state it may keep between attempts to resume from)
STAGES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "ingest": (["data", "ingest", "--recipe", "../tiny.yaml", "--out", "d"], ["d"], [".staging-d"]),
    "pretrain": (["pretrain", "--recipe", "../tiny.yaml", "--dataset", "d", "--out", "base"], ["base"], ["base.work"]),
    "finetune": (["finetune", "--recipe", "../tiny.yaml", "--dataset", "d", "--out", "adapter"], ["adapter"], ["adapter.work"]),
    "sample": (["sample", "--recipe", "../tiny.yaml", "--dataset", "d", "--adapter", "adapter", "--out", "synthetic",
                "--report", "reports/sample"], ["synthetic", "reports/sample"], [".staging-synthetic"]),
    "validate": (["validate", "--recipe", "../tiny.yaml", "--dataset", "d", "--synthetic", "synthetic", "--adapter", "adapter",
                  "--out", "validated", "--metrics", "metrics/validate.json"], ["validated", "metrics/validate.json"], []),
    "utility": (["utility", "--recipe", "../tiny.yaml", "--dataset", "d", "--synthetic", "validated", "--work", "utility.work",
                 "--metrics", "metrics/utility.json"], ["metrics/utility.json"], ["utility.work"]),
}  # fmt: skip

# Files whose bytes are allowed to differ from the reference, and why.
VOLATILE = {
    "adapter/adapter.json": "wall-clock training seconds",
    "base/base.json": "wall-clock training seconds",
    "metrics/validate.json": "wall-clock seconds of the stage",
    "metrics/utility.json": "wall-clock seconds of each run",
}


def _env(root: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "SYNTHDATA_MLRUNS": str(root / "mlruns"), **extra}


def _run(stage: str, root: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([SYNTHDATA, *STAGES[stage][0]], cwd=root, env=_env(root, **extra), capture_output=True, text=True, timeout=300)


def _files(root: Path, outputs: list[str]) -> dict[str, str]:
    found = {}
    for name in outputs:
        path = root / name
        for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []:
            found[str(file.relative_to(root))] = file_sha256(file)
    return found


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
        for relpath, sha in zip(frame["relpath"], frame["sha256"]):
            assert file_sha256(folder / relpath) == sha, f"{folder / relpath}: sha256 differs from its manifest row"


def _assert_no_partial_output(root: Path, outputs: list[str], reference: dict[str, str]) -> None:
    for name in outputs:
        path = root / name
        if not path.exists():
            continue
        assert not [p for p in (path.rglob("*") if path.is_dir() else []) if p.name.endswith(".part") or p.name.startswith(".staging-")]
        present = _files(root, [name])
        # a kill after the outputs were published (during clean-up) leaves them whole
        assert _comparable(present) == {k: v for k, v in _comparable(reference).items() if k == name or k.startswith(f"{name}/")}, f"{name} half-written"
    assert not list(root.rglob("*.part")) or all(".staging-" in str(p) or ".work" in str(p) for p in root.rglob("*.part"))


def _assert_no_dangling_runs(root: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["synthdata"])
    stages = runs[runs["tags.pipeline"] != "true"] if "tags.pipeline" in runs else runs
    assert "RUNNING" not in set(stages["status"]), stages[["tags.stage", "status"]].to_string()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from synthdata.models.base import UNetSettings, build_scheduler, build_unet, save_base

    root = tmp_path_factory.mktemp("faults")
    make_image_tree(root / "tree", {"a": 30, "b": 14, "c": 8})
    tiny = UNetSettings(sample_size=16, block_out_channels=[8, 16], norm_num_groups=4, attention_head_dim=8)
    torch.manual_seed(0)
    save_base(build_unet(tiny, 3), build_scheduler(100), {"classes": ["u", "v", "w"], "unet": asdict(tiny)}, root / "fixed-base")
    unet = "{sample_size: 16, block_out_channels: [8, 16], norm_num_groups: 4, attention_head_dim: 8}"
    (root / "tiny.yaml").write_text(
        "name: tiny\ndomain: medical\n"
        f"data: {{source: imagefolder, path: {root / 'tree'}, split: {{val_fraction: 0.25, test_fraction: 0.2}}}}\n"
        f"pretrain: {{unet: {unet}, train: {{steps: 6, batch_size: 4, checkpoint_every: 2, log_every: 1, warmup_steps: 1}}}}\n"
        f"finetune:\n  base: {root / 'fixed-base'}\n  adapter: {{rank: 2, alpha: 2}}\n"
        "  train: {steps: 6, batch_size: 4, checkpoint_every: 2, log_every: 1, warmup_steps: 1}\n"
        "sample: {steps: 2, batch_size: 4, shard_size: 5, max_images: 12}\n"
        "validate: {classifier: {steps: 10, batch_size: 8}, resamples: 2, filter: {enabled: false},\n"
        "           gates: {min_fill: null, max_near_copy_fraction: null, min_diversity_ratio: null}}\n"
        "utility: {arms: [real, real+synth], seeds: [0, 1], classifier: {steps: 4, batch_size: 8, width: 4}}\n"
    )
    reference, counts = root / "reference", {}
    reference.mkdir()
    for stage in STAGES:
        done = _run(stage, reference, SYNTHDATA_FAULT_COUNT=str(root / f"{stage}.count"))
        assert done.returncode == 0, f"{stage}: {done.stderr[-2000:]}"
        counts[stage] = int((root / f"{stage}.count").read_text())
    return root, counts


def _schedule(counts: dict[str, int]) -> list[tuple[str, int]]:
    rng = random.Random(SCHEDULE_SEED)
    return [(stage, point) for stage, total in counts.items() for point in sorted(rng.sample(range(1, total + 1), min(KILLS_PER_STAGE, total)))]


def test_every_stage_killed_at_scheduled_points_resumes_to_the_reference(project):
    root, counts = project
    reference = root / "reference"
    schedule = _schedule(counts)
    assert len(schedule) >= 20 and {s for s, _ in schedule} == set(STAGES)
    work = root / "work"
    killed = 0
    for index, (stage, point) in enumerate(schedule):
        command, outputs, state = STAGES[stage]
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(reference, work, symlinks=True)  # everything upstream of the stage, finished
        for name in outputs + state:
            target = work / name
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        if stage == "utility":
            for name in state:
                (work / name).mkdir()
        expected = _files(reference, outputs)

        attempt = _run(stage, work, SYNTHDATA_FAULT_AT=str(point))
        assert attempt.returncode == -signal.SIGKILL, f"{stage} at point {point}/{counts[stage]}: not killed\n{attempt.stderr[-1500:]}"
        killed += 1
        _assert_no_partial_output(work, outputs, expected)

        rerun = _run(stage, work)
        assert rerun.returncode == 0, f"{stage} rerun after a kill at {point}: {rerun.stderr[-2000:]}"
        again = _files(work, outputs)
        assert set(again) == set(expected), f"{stage} at {point}: files differ {set(again) ^ set(expected)}"
        assert _comparable(again) == _comparable(expected), f"{stage} killed at {point} then rerun: bytes differ from the reference"
        assert not [p for p in work.rglob("*") if p.name.startswith((".staging-", ".old-")) and not p.name.endswith(".lock")]
        _assert_manifests_match_files(work)
        _assert_no_dangling_runs(work)
    assert killed == len(schedule) >= 20
