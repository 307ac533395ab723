"""Lineage in MLflow, as its UI shows it: dataset inputs of runs, registered adapter versions."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import mlflow
import pytest
from conftest import make_image_tree

from synthdata.data.card import read_card
from synthdata.tracking.lineage import (
    adapter_model_name,
    adapter_version,
    link_adapter,
    log_dataset,
    log_splits,
    register_adapter,
)
from synthdata.tracking.mlflow_run import stage_run


def _dataset(root: Path) -> Path:
    """A real 3-class dataset ``root/d`` with train, val and test splits."""
    from synthdata.config.recipe import SplitSettings
    from synthdata.data.ingest import ingest
    from synthdata.data.sources import get_source

    make_image_tree(root / "tree", {"a": 12, "b": 8, "c": 6})
    ingest(
        get_source("imagefolder", path=str(root / "tree"), dataset="d"),
        root / "d",
        split=SplitSettings(val_fraction=0.25, test_fraction=0.2),
    )
    return root / "d"


def _adapter(folder: Path, weights: bytes) -> str:
    """A fake adapter folder (record and weights file); the weights' sha256."""
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(weights)
    sha = hashlib.sha256(weights).hexdigest()
    record = {"mode": "lora", "sha256": sha, "base_sha256": "b" * 64, "dataset_manifest_sha256": "d" * 64}
    (folder / "adapter.json").write_text(json.dumps(record))
    return sha


def _inputs(run_id: str) -> dict[str, tuple]:
    """name -> (digest, context, tags, source type, source, profile, schema) of a run's dataset inputs."""
    inputs = {}
    for item in mlflow.MlflowClient().get_run(run_id).inputs.dataset_inputs:
        tags = {tag.key: tag.value for tag in item.tags}
        d = item.dataset
        inputs[d.name] = (
            d.digest,
            tags.pop("mlflow.data.context"),
            tags,
            d.source_type,
            d.source,
            d.profile,
            d.schema,
        )
    return inputs


def test_each_split_of_a_dataset_is_an_input_of_its_own(tmp_path):
    dataset = _dataset(tmp_path)
    card = read_card(dataset)
    with stage_run("finetune", "tiny", {}) as run:
        for split in ("train", "val", "test"):
            log_dataset(run, dataset, split, split=split)
        log_dataset(run, dataset, "train", split="train")  # again, as a resumed run would: nothing added

    inputs = _inputs(run.run_id)
    assert sorted(inputs) == ["d/test", "d/train", "d/val"]
    for split, (digest, context, tags, source_type, source, profile, schema) in inputs.items():
        split = split.split("/")[1]
        rows = sum(card.counts[split].values())
        assert rows > 0
        assert digest == card.manifest_sha256[:36] and len(digest) == 36
        assert context == split
        assert tags == {"manifest_sha256": card.manifest_sha256, "split": split, "rows": str(rows)}
        assert source_type == "local" and json.loads(source) == {"uri": str(dataset.resolve())}
        assert json.loads(profile)["num_rows"] == rows
        columns = [column["name"] for column in json.loads(schema)["mlflow_colspec"]]
        assert columns == ["id", "label", "label_name", "split", "sha256", "width", "height", "channels"]
    assert sum(sum(card.counts[s].values()) for s in card.counts) == 26


def test_a_whole_dataset_is_one_input_named_after_its_folder(tmp_path):
    dataset = _dataset(tmp_path)
    with stage_run("sample", "tiny", {}) as run:
        log_dataset(run, dataset, "source")
    ((name, (digest, context, tags, *_)),) = _inputs(run.run_id).items()
    assert (name, context, tags["split"], tags["rows"]) == ("d", "source", "all", "26")


def test_log_splits_logs_the_splits_a_dataset_holds(tmp_path):
    from synthdata.config.recipe import SplitSettings
    from synthdata.data.ingest import ingest
    from synthdata.data.sources import get_source

    make_image_tree(tmp_path / "tree", {"a": 6, "b": 6})
    no_val = tmp_path / "e"
    ingest(
        get_source("imagefolder", path=str(tmp_path / "tree"), dataset="e"),
        no_val,
        split=SplitSettings(val_fraction=0.0, test_fraction=0.25),
    )
    with stage_run("utility", "tiny", {}) as run:
        assert log_splits(run, no_val) == ["train", "test"]
    assert {name: inputs[1] for name, inputs in _inputs(run.run_id).items()} == {"e/train": "train", "e/test": "test"}


def test_a_bad_context_or_split_is_refused_and_logs_nothing(tmp_path):
    dataset = _dataset(tmp_path)
    with stage_run("finetune", "tiny", {}) as run:
        with pytest.raises(ValueError, match="'training'"):
            log_dataset(run, dataset, "training", split="train")
        with pytest.raises(ValueError, match="'holdout'"):
            log_dataset(run, dataset, "val", split="holdout")
    assert _inputs(run.run_id) == {}
    with pytest.raises(RuntimeError, match="not the active run"):  # after its block has closed
        log_dataset(run, dataset, "train", split="train")


def test_adapters_become_versions_of_a_registered_model(tmp_path):
    client = mlflow.MlflowClient
    first_sha = _adapter(tmp_path / "adapter1", b"weights one")
    with stage_run("finetune", "tiny", {}) as finetune:
        first = register_adapter(finetune, tmp_path / "adapter1", "tiny", _record(tmp_path / "adapter1"))
        assert (
            register_adapter(finetune, tmp_path / "adapter1", "tiny", _record(tmp_path / "adapter1")) == first
        )  # a rerun: no duplicate
    assert (first.name, first.version, first.uri) == ("synthdata-tiny-adapter", 1, "models:/synthdata-tiny-adapter/1")
    versions = client().search_model_versions("name = 'synthdata-tiny-adapter'")
    assert len(versions) == 1
    version = client().get_model_version("synthdata-tiny-adapter", "1")
    assert version.run_id == finetune.run_id
    assert version.tags == {"adapter_sha256": first_sha, "base_sha256": "b" * 64, "dataset_manifest_sha256": "d" * 64}
    assert version.source == client().get_run(finetune.run_id).info.artifact_uri + "/adapter"
    artifacts = {Path(a.path).name for a in client().list_artifacts(finetune.run_id, "adapter")}
    assert artifacts == {"adapter.json", "adapter_model.safetensors"}
    tags = client().get_run(finetune.run_id).data.tags
    assert (tags["adapter_model"], tags["adapter_model_version"]) == ("synthdata-tiny-adapter", "1")

    second_sha = _adapter(tmp_path / "adapter2", b"weights two")
    with stage_run("finetune", "tiny", {}) as again:
        second = register_adapter(again, tmp_path / "adapter2", "tiny", _record(tmp_path / "adapter2"))
    assert second.version == 2 and client().get_model_version(second.name, "2").run_id == again.run_id
    assert adapter_version("tiny", first_sha) == first and adapter_version("tiny", second_sha) == second
    assert adapter_version("other", first_sha) is None

    with stage_run("sample", "tiny", {}) as sample:
        assert link_adapter(sample, "tiny", first_sha) == first
    tags = client().get_run(sample.run_id).data.tags
    assert tags["adapter_model"] == "synthdata-tiny-adapter" and tags["adapter_model_version"] == "1"
    assert tags["adapter_model_uri"] == "models:/synthdata-tiny-adapter/1"
    with stage_run("validate", "tiny", {}) as validate:
        assert link_adapter(validate, "tiny", "0" * 64) is None
    tags = client().get_run(validate.run_id).data.tags
    assert tags["adapter_model"] == "unregistered" and "adapter_model_version" not in tags


def test_the_same_weights_from_a_new_run_are_a_new_version_found_as_the_newest(tmp_path):
    sha = _adapter(tmp_path / "adapter", b"weights")
    with stage_run("finetune", "tiny", {}) as first:
        register_adapter(first, tmp_path / "adapter", "tiny", _record(tmp_path / "adapter"))
    with stage_run("finetune", "tiny", {}) as second:
        assert register_adapter(second, tmp_path / "adapter", "tiny", _record(tmp_path / "adapter")).version == 2
    assert adapter_version("tiny", sha).version == 2


def test_an_odd_recipe_name_still_names_a_registered_model(tmp_path):
    sha = _adapter(tmp_path / "adapter", b"weights")
    name = adapter_model_name("cd4+/v1:x y")
    assert "/" not in name and ":" not in name and " " not in name
    assert name != adapter_model_name("cd4_/v1:x y")
    with stage_run("finetune", "cd4+/v1:x y", {}) as run:
        version = register_adapter(run, tmp_path / "adapter", "cd4+/v1:x y", _record(tmp_path / "adapter"))
    assert version.name == name and mlflow.MlflowClient().get_registered_model(name).name == name
    assert adapter_version("cd4+/v1:x y", sha) == version


def test_looking_up_an_adapter_makes_no_store():
    assert adapter_version("tiny", "0" * 64) is None
    assert not Path(os.environ["SYNTHDATA_MLRUNS"]).exists()


def _record(adapter):
    return json.loads((adapter / "adapter.json").read_text())
