"""Determinism record: the same recipe and seeds give the same adapter, synthetic set and metrics
on CPU, byte for byte, and every stage's MLflow run records the versions needed to repeat it."""

from __future__ import annotations

import json

import pytest
from conftest import STAGE_COMMANDS, run_stage, stage_files

pytestmark = pytest.mark.slow

# Run records: they carry wall-clock training time and the MLflow run id beside the weights' hash
# (the weights themselves, adapter_model.safetensors and unet/*.safetensors, are compared byte
# for byte); sample.json names the MLflow run of the sampling.
TIMED = {"adapter/adapter.json", "base/base.json", "synthetic/sample.json"}


def test_same_recipe_and_seeds_give_the_same_hashes(stage_project):
    root, _ = stage_project
    again = root / "again"
    again.mkdir()
    for stage in STAGE_COMMANDS:
        done = run_stage(stage, again)
        assert done.returncode == 0, f"{stage}: {done.stderr[-2000:]}"
    outputs = [name for _, names, _ in STAGE_COMMANDS.values() for name in names]
    first, second = stage_files(root / "reference", outputs), stage_files(again, outputs)
    assert set(first) == set(second)
    assert {k: v for k, v in first.items() if k not in TIMED} == {k: v for k, v in second.items() if k not in TIMED}
    for record in ("adapter/adapter.json", "base/base.json"):
        a, b = (json.loads((folder / record).read_text()) for folder in (root / "reference", again))
        assert a["sha256"] == b["sha256"]  # the weights' hash
    # the three hashes a user compares
    adapter = json.loads((again / "adapter" / "adapter.json").read_text())["sha256"]
    synthetic = json.loads((again / "synthetic" / "card.json").read_text())["manifest_sha256"]
    assert adapter == json.loads((root / "reference" / "adapter" / "adapter.json").read_text())["sha256"]
    assert synthetic == json.loads((root / "reference" / "synthetic" / "card.json").read_text())["manifest_sha256"]
    assert all(
        first[f"metrics/{name}"] == second[f"metrics/{name}"]
        for name in ("utility.json", "utility-figures.json", "validate.json", "validate-figures.json", "finetune.json")
    )


def test_every_stage_run_records_the_versions_to_repeat_it(stage_project):
    import mlflow

    root, _ = stage_project
    mlflow.set_tracking_uri(f"sqlite:///{root / 'reference' / 'mlruns' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["synthdata"])
    stages = runs[runs["tags.pipeline"] != "true"]
    assert set(stages["tags.stage"]) == set(STAGE_COMMANDS)
    for tag in ("python", "platform", "synthdata", "git_commit", "torch", "diffusers", "peft", "numpy", "safetensors"):
        column = stages[f"tags.synthdata.{tag}"]
        assert column.notna().all() and (column != "not installed").all(), tag
    finetune = stages[stages["tags.stage"] == "finetune"].iloc[0]
    seeds = {
        c: finetune[c]
        for c in stages.columns
        if c.startswith("params.") and c.endswith(".seed") and isinstance(finetune[c], str)
    }
    assert seeds and all(value == "0" for value in seeds.values()), seeds
