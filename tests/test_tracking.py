"""Every stage leaves an MLflow run with its params, metrics, git commit and manifest hash."""

from __future__ import annotations

import json

import mlflow
from conftest import make_image_tree, stage_runs

from synthdata.config.recipe import DataSettings, LongtailSettings, Recipe
from synthdata.data.card import read_card
from synthdata.provenance import git_commit
from synthdata.reporting.stage_files import StageFiles
from synthdata.stages.ingest import run_ingest
from synthdata.stages.longtail import run_longtail
from synthdata.stages.validate_data import run_validate_data


def test_stage_runs_are_recorded(tmp_path):
    tree = make_image_tree(tmp_path / "tree", {"a": 20, "b": 20, "c": 20})
    recipe = Recipe(name="tiny", domain="generic", data=DataSettings(source="imagefolder", path=str(tree)))
    run_ingest(recipe, tmp_path / "tiny")
    run_longtail(recipe, LongtailSettings(imbalance=5, seed=1), tmp_path / "tiny", tmp_path / "tiny-lt")
    files = StageFiles(tmp_path / "metrics.json", tmp_path / "figures.json")
    summary = run_validate_data("tiny", [tmp_path / "tiny", tmp_path / "tiny-lt"], files)

    runs = stage_runs().set_index("tags.stage")
    assert sorted(runs.index) == ["ingest", "longtail", "validate-data"]
    assert (runs["status"] == "FINISHED").all()
    assert (runs["tags.git_commit"] == git_commit()).all() and (runs["tags.recipe"] == "tiny").all()
    assert runs.loc["ingest", "tags.manifest_sha256"] == read_card(tmp_path / "tiny").manifest_sha256
    assert runs.loc["longtail", "tags.manifest_sha256"] == read_card(tmp_path / "tiny-lt").manifest_sha256
    assert runs.loc["ingest", "params.data.source"] == "imagefolder"
    assert runs.loc["longtail", "params.longtail.imbalance"] == "5"
    assert runs.loc["ingest", "metrics.images"] == 60
    assert runs.loc["validate-data", "metrics.tiny-lt.failed"] == 0
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"train": summary["tiny-lt"]["images_train"]}
    assert json.loads((tmp_path / "figures.json").read_text()) == summary
    # the longtail run read the parent dataset: an MLflow dataset input, with the manifest's hash
    (longtail,) = mlflow.MlflowClient().search_runs(
        [runs.loc["longtail", "experiment_id"]], filter_string="tags.stage = 'longtail'"
    )
    (source,) = longtail.inputs.dataset_inputs
    assert source.dataset.name == "tiny" and {t.key: t.value for t in source.tags}["mlflow.data.context"] == "source"
    assert source.dataset.digest == read_card(tmp_path / "tiny").manifest_sha256[:36]


def test_stage_runs_nest_under_one_pipeline_run_until_it_is_closed():
    from synthdata.tracking.mlflow_run import finish_pipeline, stage_run

    with stage_run("ingest", "tiny", {}) as first:
        pass
    with stage_run("sample", "tiny", {}) as second:
        pass
    parent = mlflow.get_run(first.run_id).data.tags["mlflow.parentRunId"]
    assert mlflow.get_run(second.run_id).data.tags["mlflow.parentRunId"] == parent
    assert mlflow.get_run(parent).info.status == "RUNNING"  # open until the report stage closes it
    assert finish_pipeline("tiny", {"real.balanced_accuracy": 0.5}) == parent
    assert mlflow.get_run(parent).info.status == "FINISHED" and mlflow.get_run(parent).data.metrics == {
        "real.balanced_accuracy": 0.5
    }
    # the next pipeline run gets a parent of its own; a run it reopens (same inputs) moves to it
    with stage_run("sample", "tiny", {}, resume_run_id=second.run_id):
        pass
    reopened = mlflow.get_run(second.run_id).data.tags["mlflow.parentRunId"]
    assert reopened != parent and mlflow.get_run(reopened).data.tags["pipeline"] == "true"
