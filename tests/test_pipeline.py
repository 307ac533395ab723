"""The DVC pipeline end to end on a tiny generated dataset, as a DVC and MLflow user works with it:
repro; headline metrics that fit a terminal; MLflow dataset inputs and a registered adapter; push
to and pull from a remote; experiments with overrides, compared in dvc exp show and in the plots
page in a headless browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from conftest import CHROMEDRIVER, CHROMIUM, REPO, headless_chromium, make_image_tree

from synthdata.data.card import read_card
from synthdata.data.manifest import class_counts, read_manifest
from synthdata.hashing import file_sha256
from synthdata.models.base import UNetSettings, build_scheduler, build_unet, save_base
from synthdata.reporting.stage_files import MAX_HEADLINE, headline_size

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


def _assert_headlines(project: Path, env: dict, utility: dict, figures: dict) -> None:
    """Each stage's headline is a handful of numbers taken from its figures; dvc metrics show
    prints them all in one table that fits a terminal; the data plots are tables."""
    metrics = project / "metrics" / "tiny"
    headlines = {
        n: json.loads((metrics / f"{n}.json").read_text()) for n in ("data", "finetune", "validate", "utility")
    }
    for name, headline in headlines.items():
        assert 1 <= headline_size(headline) <= MAX_HEADLINE, name
    data = json.loads((metrics / "data-figures.json").read_text())
    assert headlines["data"] == {"train": data["tiny-lt"]["images_train"]}
    assert headlines["validate"]["accepted"] == figures["filter"]["accepted"] and headlines["validate"]["passed"]
    assert headlines["validate"]["FD"] == figures["overall"]["FD-domain"]["value"]
    best_real = max(utility["arms"][a]["balanced_accuracy"]["mean"] for a in utility["arms"] if "synth" not in a)
    assert headlines["utility"]["ba"]["real"] == best_real
    assert headlines["utility"]["ba"]["gain"] == pytest.approx(headlines["utility"]["ba"]["synth"] - best_real)
    losses = (metrics / "plots" / "finetune-loss.csv").read_text().splitlines()
    assert losses[0] == "step,loss" and [int(line.split(",")[0]) for line in losses[1:]] == [2, 4]
    assert headlines["finetune"]["loss"] == float(losses[-1].split(",")[1])
    arms = (metrics / "plots" / "utility-arms.csv").read_text().splitlines()
    assert arms[0] == "arm,metric,mean,low,high" and len(arms) == 1 + 2 * len(utility["arms"])
    shown = _run(["dvc", "metrics", "show"], project, env).splitlines()
    assert len(shown) == 5 and max(len(line) for line in shown) <= 200, "\n".join(shown)


def _assert_lineage(store: Path, manifest_sha256: str, adapter: dict, synthetic) -> None:
    """In MLflow: each stage's dataset inputs with the manifest's hash, the adapter registered as
    a model version tagged with its base and data, and the runs that used it pointing at it."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("synthdata").experiment_id
    runs = {r.data.tags["stage"]: r for r in client.search_runs([experiment]) if "stage" in r.data.tags}

    def inputs(stage):
        found = {}
        for item in runs[stage].inputs.dataset_inputs:
            tags = {t.key: t.value for t in item.tags}
            found[item.dataset.name] = (tags["mlflow.data.context"], item.dataset.digest, tags["manifest_sha256"])
        return found

    train = ("train", manifest_sha256[:36], manifest_sha256)
    assert inputs("finetune") == {"tiny-lt/train": train}
    assert inputs("utility")["tiny-lt/test"] == ("test", manifest_sha256[:36], manifest_sha256)
    assert inputs("utility")["tiny"][0] == "validated"
    assert inputs("validate")["tiny"] == ("synthetic", synthetic.manifest_sha256[:36], synthetic.manifest_sha256)
    assert inputs("sample") == {"tiny-lt/train": train}
    version = client.get_model_version("synthdata-tiny-adapter", "1")
    assert version.run_id == runs["finetune"].info.run_id
    assert version.tags["adapter_sha256"] == adapter["sha256"]
    assert version.tags["base_sha256"] == adapter["base_sha256"]
    assert version.tags["dataset_manifest_sha256"] == manifest_sha256
    assert "adapter/adapter.json" in {f.path for f in client.list_artifacts(version.run_id, "adapter")}
    for stage in ("sample", "validate"):
        assert runs[stage].data.tags["adapter_model_uri"] == "models:/synthdata-tiny-adapter/1", stage


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): file_sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _assert_push_and_pull(project: Path, tmp_path: Path, env: dict) -> None:
    """dvc push to a local remote; a fresh clone's dvc pull gets the same datasets, adapter and
    sets, byte for byte, and DVC finds nothing to recompute."""
    _run(["dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote")], project, env)
    _run(["git", "commit", "-qam", "shared remote"], project, env)
    assert "files pushed" in _run(["dvc", "push"], project, env)
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(project), str(clone)], tmp_path, env)
    _run(["dvc", "pull"], clone, env)
    for out in ("datasets/tiny", "datasets/tiny-lt", "models/tiny/adapter", "synthetic/tiny", "validated/tiny"):
        assert _tree_hashes(clone / out) == _tree_hashes(project / out), out
    assert "Data and pipelines are up to date" in _run(["dvc", "status"], clone, env)


def _assert_experiments(project: Path, tmp_path: Path, env: dict) -> None:
    """Two experiments that override sampling; dvc exp show has both with their parameters and
    headline metrics; the plots page of the two, drawn offline in a headless browser, overlays
    both experiments in every data plot."""
    _run(["dvc", "exp", "run", "-n", "guidance3", "-S", "recipes/tiny.yaml:sample.guidance=3"], project, env)
    overrides = ["-S", "recipes/tiny.yaml:sample.mode=img2img", "-S", "recipes/tiny.yaml:sample.strength=0.3"]
    _run(["dvc", "exp", "run", "-n", "img2img", *overrides], project, env)
    shown = json.loads(_run(["dvc", "exp", "show", "--json"], project, env))
    experiments = {
        e["name"]: e["revs"][0]["data"] for row in shown for e in (row.get("experiments") or []) if e.get("name")
    }
    assert {"guidance3", "img2img"} <= set(experiments)
    for name, sample in (("guidance3", {"guidance": 3}), ("img2img", {"mode": "img2img", "strength": 0.3})):
        data = experiments[name]
        params = data["params"]["recipes/tiny.yaml"]["data"]["sample"]
        assert {k: params[k] for k in sample} == sample, name
        headline = data["metrics"]["metrics/tiny/utility.json"]["data"]
        assert set(headline) == {"ba", "rare", "goal_met"} and headline["ba"]["real"] is not None, name
        assert data["metrics"]["metrics/tiny/validate.json"]["data"]["accepted"] > 0, name
    page = project / "dvc_plots" / "index.html"
    assert f"{page.relative_to(project)}: open it in a browser" in _run(
        ["synthdata", "plots", "guidance3", "img2img"], project, env
    )
    _assert_plots_page(page)


def _assert_plots_page(page: Path) -> None:
    """Every data plot on the page holds both experiments' rows and draws without internet."""
    html = page.read_text()
    assert "cdn.jsdelivr" not in html and "<script src" not in html  # Vega inline: nothing to fetch
    specs = [json.loads(match) for match in re.findall(r"var spec = (\{.*?\});\n", html, flags=re.S)]
    titles = {spec["title"]["text"] if isinstance(spec["title"], dict) else spec["title"]: spec for spec in specs}
    assert len(specs) == 5, sorted(titles)
    for title, spec in titles.items():
        assert {row["rev"] for row in spec["data"]["values"]} == {"guidance3", "img2img"}, title
    if not (CHROMIUM and CHROMEDRIVER):
        return
    driver = headless_chromium()
    try:
        driver.get(page.as_uri())
        drawn = driver.execute_async_script(
            """const done = arguments[arguments.length - 1];
            setTimeout(() => done([...document.querySelectorAll('canvas, svg.marks')].map(
              c => [c.getBoundingClientRect().width, c.getBoundingClientRect().height])), 3000);"""
        )
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
    assert not errors, errors
    assert len(drawn) >= 5 and all(w > 100 and h > 100 for w, h in drawn), drawn


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
        "sample: {steps: 2, batch_size: 8, shard_size: 10, mode: noise, strength: 0.5, guidance: 2.0}\n"
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
    shutil.copytree(REPO / ".dvc" / "plots", project / ".dvc" / "plots")  # synthdata's plot templates
    output = _run(["dvc", "repro"], project, env)

    first = read_card(project / "datasets" / "tiny-lt")
    assert class_counts(read_manifest(project / "datasets" / "tiny-lt"), "train") == {
        name: int(first.derived_from["n_max"] * 10 ** (-rank / 3) + 1e-9)
        for rank, name in enumerate(first.derived_from["ranking"])
    }
    metrics = json.loads((project / "metrics" / "tiny" / "data-figures.json").read_text())
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
    figures = json.loads((project / "metrics" / "tiny" / "validate-figures.json").read_text())
    assert figures["passed"] and "FD-EffNet" in figures["overall"]
    assert (project / "reports" / "tiny" / "validate" / "report.html").is_file()
    utility = json.loads((project / "metrics" / "tiny" / "utility-figures.json").read_text())
    assert list(utility["arms"]) == ["real", "real-oversampled", "real-augmented", "real+synth"]
    assert {(r["log"]["steps"], r["log"]["images_seen"]) for r in utility["runs"]} == {(6, 48)}  # equal budgets
    assert utility["leak_check"]["shared"] == 0 and utility["leak_check"]["synthetic_adapted_images_checked"] == len(
        validated
    )
    assert "balanced accuracy" in output and "report: reports/tiny/index.html" in output  # the headline table, printed
    assert "Headline" in (project / "reports" / "tiny" / "index.html").read_text()
    _assert_one_pipeline_run(project / "mlruns")
    _assert_headlines(project, env, utility, figures)
    _assert_lineage(project / "mlruns", first.manifest_sha256, adapter, read_card(project / "synthetic" / "tiny"))
    assert "Data and pipelines are up to date" in _run(["dvc", "repro"], project, env)
    _assert_benchmark(project, env)

    _run(["git", "add", "-A"], project, env)
    _run(["git", "commit", "-qm", "baseline"], project, env)
    _assert_push_and_pull(project, tmp_path, env)
    _assert_experiments(project, tmp_path, env)
    _run(["dvc", "exp", "run", "-S", "recipes/tiny.yaml:longtail.imbalance=3"], project, env)
    second = read_card(project / "datasets" / "tiny-lt")
    assert second.derived_from["imbalance"] == 3
    assert second.manifest_sha256 != first.manifest_sha256
    counts = class_counts(read_manifest(project / "datasets" / "tiny-lt"), "train")
    assert max(counts.values()) / min(counts.values()) == pytest.approx(3, rel=0.15)
    metrics = json.loads((project / "metrics" / "tiny" / "data-figures.json").read_text())
    assert metrics["tiny-lt"]["failed"] == 0 and metrics["tiny-lt"]["manifest_sha256"] == second.manifest_sha256
    assert read_card(project / "datasets" / "tiny").manifest_sha256 == first.derived_from["parent_manifest_sha256"]
    retrained = json.loads((project / "models" / "tiny" / "adapter" / "adapter.json").read_text())
    assert retrained["dataset_manifest_sha256"] == second.manifest_sha256  # the adapter follows its data
    resampled = read_manifest(project / "synthetic" / "tiny")
    assert set(resampled["adapter_sha256"]) == {retrained["sha256"]}  # and the synthetic set its adapter
