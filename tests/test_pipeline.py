"""The DVC pipeline end to end on a tiny generated dataset: repro, then an experiment override."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from conftest import REPO, make_image_tree

from synthdata.data.card import read_card
from synthdata.data.manifest import class_counts, read_manifest
from synthdata.hashing import file_sha256
from synthdata.models.base import UNetSettings, build_scheduler, build_unet, save_base

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, env: dict) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def _assert_one_pipeline_run(store: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True)
    parents = runs[runs["tags.pipeline"] == "true"]
    assert len(parents) == 1 and parents["status"].tolist() == ["FINISHED"]
    stages = runs[runs["tags.mlflow.parentRunId"] == parents["run_id"].iloc[0]]
    assert set(stages["tags.stage"]) == {
        "ingest",
        "longtail",
        "validate-data",
        "finetune",
        "sample",
        "validate",
        "utility",
    }


def _assert_benchmark(project: Path, env: dict) -> None:
    """``synthdata benchmark`` on the finished pipeline: the ablation runs, RESULTS.md and
    results.json come out in the promised shape."""
    runs_before = len(list((project / "models" / "tiny" / "utility.work").glob("*.json")))
    output = _run(["synthdata", "benchmark", "--recipes", "tiny", "--no-anchor"], project, env)
    assert "synthdata benchmark --preset cpu" in output
    results = json.loads((project / "benchmarks" / "results.json").read_text())
    arms = results["utility"]["tiny"]
    assert set(arms) == {"real", "real-oversampled", "real-augmented", "real+synth", "real+synth-scratch"}
    for figures in arms.values():
        for metric in ("balanced_accuracy", "rare_third_recall"):
            low, high = figures[metric]["ci95"]
            assert low <= figures[metric]["mean"] <= high
    assert results["realism"]["tiny"]["scratch"] is not None and results["errors"]["tiny"] == {
        "pipeline": None,
        "ablation": None,
    }
    assert results["throughput"]["tiny"]["finetune_images_per_second"] > 0
    # only the scratch arm's two seeds were trained; the other arms' runs were reused
    assert len(list((project / "models" / "tiny" / "utility.work").glob("*.json"))) == runs_before + 2
    text = (project / "benchmarks" / "RESULTS.md").read_text()
    assert "real+synth-scratch" in text and "floor" in text


def test_dvc_repro_and_exp_run_override(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "synthdata", project / "synthdata", ignore=shutil.ignore_patterns("__pycache__"))
    tree = make_image_tree(tmp_path / "tree", {f"k{i}": 30 for i in range(4)})
    torch.manual_seed(0)
    tiny = UNetSettings(sample_size=16, block_out_channels=[8, 16], norm_num_groups=4, attention_head_dim=8)
    save_base(
        build_unet(tiny, 2), build_scheduler(100), {"classes": ["u", "v"], "unet": asdict(tiny)}, tmp_path / "base"
    )
    (project / "recipes").mkdir()
    (project / "recipes" / "tiny.yaml").write_text(
        "name: tiny\ndomain: generic\n"
        f"data:\n  source: imagefolder\n  path: {tree}\n"
        "longtail:\n  imbalance: 10\n  seed: 0\n"
        f"finetune:\n  base: {tmp_path / 'base'}\n  adapter: {{rank: 2, alpha: 2}}\n"
        "  train: {steps: 4, batch_size: 4, checkpoint_every: 2, log_every: 2, warmup_steps: 1}\n"
        "sample: {steps: 2, batch_size: 8, shard_size: 10}\n"
        "validate: {classifier: {steps: 20, batch_size: 16}, resamples: 2, filter: {enabled: false},\n"
        "           gates: {min_fill: 1.0, max_near_copy_fraction: null, min_diversity_ratio: null}}\n"
        "utility: {arms: [real, real-oversampled, real-augmented, real+synth], seeds: [0, 1],\n"
        "          classifier: {steps: 6, batch_size: 8, width: 4}, budget: {rule: steps, double: false},\n"
        "          augmentation: [{transform: albumentations.HorizontalFlip, params: {p: 0.5}}]}\n"
        "provenance: {}\n"  # every section dvc.yaml tracks is named, if only as {}
    )
    (project / "params.yaml").write_text("recipes:\n  - tiny\n")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SYNTHDATA_MLRUNS": str(project / "mlruns"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    _run(["git", "init", "-q"], project, env)
    _run(["dvc", "init", "-q"], project, env)
    _run(["dvc", "config", "core.analytics", "false"], project, env)
    output = _run(["dvc", "repro"], project, env)

    first = read_card(project / "datasets" / "tiny-lt")
    assert class_counts(read_manifest(project / "datasets" / "tiny-lt"), "train") == {
        name: int(first.derived_from["n_max"] * 10 ** (-rank / 3) + 1e-9)
        for rank, name in enumerate(first.derived_from["ranking"])
    }
    metrics = json.loads((project / "metrics" / "tiny" / "data.json").read_text())
    assert metrics["tiny-lt"]["failed"] == 0 and metrics["tiny-lt"]["manifest_sha256"] == first.manifest_sha256
    adapter = json.loads((project / "models" / "tiny" / "adapter" / "adapter.json").read_text())
    assert adapter["dataset_manifest_sha256"] == first.manifest_sha256 and adapter["steps"] == 4
    assert adapter["base_sha256"] == file_sha256(tmp_path / "base" / "unet" / "diffusion_pytorch_model.safetensors")
    synthetic = read_manifest(project / "synthetic" / "tiny")
    counts = class_counts(read_manifest(project / "datasets" / "tiny-lt"), "train")
    assert synthetic.groupby("label_name").size().to_dict() == {
        n: min(max(counts.values()) - c, 10 * c) for n, c in counts.items() if c < max(counts.values())
    }
    assert set(synthetic["source_manifest_sha256"]) == {first.manifest_sha256}
    assert set(synthetic["adapter_sha256"]) == {adapter["sha256"]}
    assert (project / "reports" / "tiny" / "sample" / "class_balance.png").is_file()
    validated = read_manifest(project / "validated" / "tiny")
    assert sorted(validated["id"]) == sorted(synthetic["id"])  # filter off: every image accepted
    figures = json.loads((project / "metrics" / "tiny" / "validate.json").read_text())
    assert figures["passed"] and "FD-EffNet" in figures["overall"]
    assert (project / "reports" / "tiny" / "validate" / "report.html").is_file()
    utility = json.loads((project / "metrics" / "tiny" / "utility.json").read_text())
    assert list(utility["arms"]) == ["real", "real-oversampled", "real-augmented", "real+synth"]
    assert {(r["log"]["steps"], r["log"]["images_seen"]) for r in utility["runs"]} == {(6, 48)}  # equal budgets
    assert utility["leak_check"]["shared"] == 0 and utility["leak_check"]["synthetic_adapted_images_checked"] == len(
        validated
    )
    assert "balanced accuracy" in output and "report: reports/tiny/index.html" in output  # the headline table, printed
    assert "Headline" in (project / "reports" / "tiny" / "index.html").read_text()
    _assert_one_pipeline_run(project / "mlruns")
    assert "Data and pipelines are up to date" in _run(["dvc", "repro"], project, env)
    _assert_benchmark(project, env)

    _run(["git", "add", "-A"], project, env)
    _run(["git", "commit", "-qm", "baseline"], project, env)
    _run(["dvc", "exp", "run", "-S", "recipes/tiny.yaml:longtail.imbalance=3"], project, env)
    second = read_card(project / "datasets" / "tiny-lt")
    assert second.derived_from["imbalance"] == 3
    assert second.manifest_sha256 != first.manifest_sha256
    counts = class_counts(read_manifest(project / "datasets" / "tiny-lt"), "train")
    assert max(counts.values()) / min(counts.values()) == pytest.approx(3, rel=0.15)
    metrics = json.loads((project / "metrics" / "tiny" / "data.json").read_text())
    assert metrics["tiny-lt"]["failed"] == 0 and metrics["tiny-lt"]["manifest_sha256"] == second.manifest_sha256
    assert read_card(project / "datasets" / "tiny").manifest_sha256 == first.derived_from["parent_manifest_sha256"]
    retrained = json.loads((project / "models" / "tiny" / "adapter" / "adapter.json").read_text())
    assert retrained["dataset_manifest_sha256"] == second.manifest_sha256  # the adapter follows its data
    resampled = read_manifest(project / "synthetic" / "tiny")
    assert set(resampled["adapter_sha256"]) == {retrained["sha256"]}  # and the synthetic set its adapter
