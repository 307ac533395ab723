"""The sampler stage: determinism, resume after a kill, the lock, provenance, trainer-readable output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image_tree, make_sampling_setup, stage_runs
from PIL import Image
from typer.testing import CliRunner

from synthdata.cli import app
from synthdata.config.recipe import SplitSettings, load_recipe
from synthdata.data.card import read_card
from synthdata.data.expectations import validate_dataset
from synthdata.data.images import read_png_text
from synthdata.data.ingest import ingest
from synthdata.data.manifest import DIGITAL_SOURCE_TYPE, PROVENANCE_COLUMNS, read_manifest
from synthdata.data.sources import get_source
from synthdata.errors import DataError
from synthdata.locking import FolderLock, LockedError, lock_path
from synthdata.sampling import writer
from synthdata.sampling.output import to_dataset_format
from synthdata.stages.sample import run_sample


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return make_sampling_setup(tmp_path_factory.mktemp("sample"))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _sample(setup, out, **kwargs):
    recipe = load_recipe(setup / "tiny.yaml")
    return run_sample(recipe, setup / "adapter", setup / "d", out, **kwargs)


def test_plan_balances_the_train_split_and_the_output_follows_it(setup, tmp_path):
    result = _sample(setup, tmp_path / "s", report=tmp_path / "report")
    counts = {q.name: (q.real, q.synthetic) for q in result.plan.classes}
    real = read_card(setup / "d").counts["train"]
    assert counts == {n: (real[n], max(real.values()) - real[n]) for n in "abc"}
    frame = read_manifest(tmp_path / "s")
    assert len(frame) == result.images == result.plan.synthetic
    assert frame.groupby("label_name").size().to_dict() == {n: s for n, (_, s) in counts.items() if s}
    assert set(PROVENANCE_COLUMNS) <= set(frame.columns)
    assert (frame["digital_source_type"] == DIGITAL_SOURCE_TYPE).all() and (frame["split"] == "train").all()
    # The generator's size (16 px: never resized to the 8 px real images), the dataset's channels.
    with Image.open(tmp_path / "s" / frame["relpath"][0]) as image:
        assert image.size == (16, 16) and image.mode == "RGB"
    assert (read_card(tmp_path / "s").width, set(frame["width"])) == (16, {16})
    validate_dataset(tmp_path / "s", frame, read_card(tmp_path / "s"))  # the GE suite for synthetic sets
    assert (tmp_path / "report" / "samples.png").is_file() and (tmp_path / "report" / "class_balance.png").is_file()
    assert sorted(p.stem for p in (tmp_path / "report" / "grids").iterdir()) == sorted(frame["label_name"].unique())
    runs = stage_runs()
    assert list(runs["status"]) == ["FINISHED"] and runs["tags.sample_run_id"][0] == result.run_id


def test_two_runs_give_the_same_bytes(setup, tmp_path):
    _sample(setup, tmp_path / "one")
    _sample(setup, tmp_path / "two")
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    one.pop("README.md"), two.pop("README.md")  # the card names its folder
    card_one, card_two = json.loads(one.pop("card.json")), json.loads(two.pop("card.json"))
    assert card_one["manifest_sha256"] == card_two["manifest_sha256"]
    assert [k for k in one if k.endswith(".png")] and one == two


@pytest.mark.parametrize("anchoring", [{}, {"mode": "img2img", "strength": [0.2, 0.8]}], ids=["noise", "img2img"])
def test_a_kill_mid_batch_resumes_without_duplicates_to_the_same_bytes(setup, tmp_path, monkeypatch, anchoring):
    recipe = load_recipe(setup / "tiny.yaml")
    settings = replace(recipe.sample, **anchoring)
    _sample(setup, tmp_path / "whole", settings=settings)
    real_write = writer.write_bytes
    calls = []

    def dies_on_the_sixth_image(path, data):
        calls.append(path)
        if len(calls) == 6:  # the second image of the second batch: a batch half written
            path.parent.mkdir(parents=True, exist_ok=True)
            path.with_name(f".{path.name}.part").write_bytes(data[: len(data) // 2])
            raise KeyboardInterrupt
        real_write(path, data)

    monkeypatch.setattr(writer, "write_bytes", dies_on_the_sixth_image)
    with pytest.raises(KeyboardInterrupt):
        _sample(setup, tmp_path / "killed", settings=settings)
    monkeypatch.setattr(writer, "write_bytes", real_write)
    assert not (tmp_path / "killed").exists()
    staged = [p for p in (tmp_path / ".staging-killed").rglob("*.png")]
    assert len(staged) == 5
    assert not lock_path(tmp_path / "killed").exists()
    assert list(stage_runs()["status"]).count("FAILED") == 1

    resumed = _sample(setup, tmp_path / "killed", settings=settings)
    # The five finished images were kept; the half-written batch was generated again, whole.
    assert resumed.generated == resumed.images - 5
    whole, again = _files(tmp_path / "whole"), _files(tmp_path / "killed")
    assert {k: v for k, v in whole.items() if k.endswith((".png", ".csv", ".tar"))} == {
        k: v for k, v in again.items() if k.endswith((".png", ".csv", ".tar"))
    }
    assert not list((tmp_path / "killed").rglob("*.part")) and not (tmp_path / ".staging-killed").exists()
    frame = read_manifest(tmp_path / "killed")
    assert frame["id"].is_unique and len(frame) == len(list((tmp_path / "killed").rglob("*.png")))
    # One MLflow run per sampling run id: the killed attempt was reopened and finished, not left dangling.
    assert list(stage_runs()["status"]) == ["FINISHED"]


def test_a_second_writer_is_refused_naming_the_holder_and_a_stale_lock_is_cleared(setup, tmp_path):
    with FolderLock(tmp_path / "s"):
        with pytest.raises(LockedError, match=rf"being written by pid {os.getpid()} on "):
            _sample(setup, tmp_path / "s")
    assert not (tmp_path / "s").exists()
    # A writer killed while holding the lock leaves the file but not the flock.
    code = f"from synthdata.locking import FolderLock; import os; FolderLock({str(tmp_path / 's')!r}).acquire(); os._exit(9)"
    subprocess.run([sys.executable, "-c", code], check=False)
    assert lock_path(tmp_path / "s").read_text()
    lock = FolderLock(tmp_path / "s").acquire()
    assert lock.stale is not None and "pid" in lock.stale
    lock.release()
    assert not lock_path(tmp_path / "s").exists()


def test_every_png_carries_its_provenance(setup, tmp_path):
    result = _sample(setup, tmp_path / "s")
    frame = read_manifest(tmp_path / "s")
    for row in frame.to_dict(orient="records"):
        text = read_png_text((tmp_path / "s" / row["relpath"]).read_bytes())
        assert text["digitalSourceType"].endswith("/trainedAlgorithmicMedia")
        assert text["class"] == row["label_name"] and text["id"] == row["id"]
        for column in (
            "base_id",
            "base_sha256",
            "adapter_sha256",
            "seed",
            "scheduler",
            "steps",
            "guidance",
            "synthdata_version",
            "git_commit",
            "source_manifest_sha256",
            "sample_run_id",
        ):
            assert text[column] == str(row[column]), column
        assert "trainedAlgorithmicMedia" in text["XML:com.adobe.xmp"]
    adapter = json.loads((setup / "adapter" / "adapter.json").read_text())
    assert set(frame["adapter_sha256"]) == {adapter["sha256"]} and set(frame["base_sha256"]) == {
        adapter["base_sha256"]
    }
    # the MLflow run that made them: the one tagged with their sampling run id (no run id in the images)
    assert "mlflow_run_id" not in frame.columns and set(frame["sample_run_id"]) == {result.run_id}
    assert list(stage_runs().query("`tags.sample_run_id` == @result.run_id")["run_id"]) == [result.mlflow_run_id]
    assert set(frame["source_manifest_sha256"]) == {read_card(setup / "d").manifest_sha256}


def test_output_loads_as_an_imagefolder_and_as_webdataset_shards(setup, tmp_path):
    datasets = pytest.importorskip("datasets")
    webdataset = pytest.importorskip("webdataset")
    _sample(setup, tmp_path / "s")
    frame = read_manifest(tmp_path / "s").set_index("id")
    loaded = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "s"), split="train")
    assert len(loaded) == len(frame)
    for example in loaded:
        row = frame.loc[example["id"]]
        assert example["label"] == row["label_name"] and example["seed"] == row["seed"]
        assert np.array_equal(np.asarray(example["image"]), np.asarray(Image.open(tmp_path / "s" / row["relpath"])))
    shards = sorted((tmp_path / "s" / "shards").glob("*.tar"))
    assert len(shards) == -(-len(frame) // 5)
    seen = {}
    for sample in webdataset.WebDataset([str(p) for p in shards], shardshuffle=False):
        seen[sample["__key__"]] = sample
        assert sample["png"] == (tmp_path / "s" / frame.loc[sample["__key__"], "relpath"]).read_bytes()
        assert int(sample["cls"]) == frame.loc[sample["__key__"], "label"]
        assert json.loads(sample["json"])["sha256"] == frame.loc[sample["__key__"], "sha256"]
    assert sorted(seen) == sorted(frame.index)
    with tarfile.open(shards[0]) as archive:
        assert {m.mtime for m in archive.getmembers()} == {0}


def test_dry_run_prints_the_plan_without_loading_a_model(setup):
    result = CliRunner().invoke(
        app,
        [
            "sample",
            "--recipe",
            str(setup / "tiny.yaml"),
            "--dataset",
            str(setup / "d"),
            "--dry-run",
            "--policy",
            "to-target",
            "--target",
            "30",
            "--max-ratio",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    real = read_card(setup / "d").counts["train"]
    for name in "abc":
        assert f"{min(30 - real[name], 2 * real[name])}" in result.output
    assert "capped" in result.output


def test_cli_refuses_bad_settings_with_one_line(setup, tmp_path):
    base = ["sample", "--recipe", str(setup / "tiny.yaml"), "--dataset", str(setup / "d")]
    for extra, message in (
        (
            ["--dry-run", "--policy", "balance"],
            "--policy: 'sample.policy' must be one of ['to-max', 'to-target', 'share']",
        ),
        (["--dry-run", "--policy", "to-target"], "sample.target"),
        (["--adapter", str(setup / "adapter")], "--out are required"),
    ):
        completed = subprocess.run([sys.executable, "-m", "synthdata", *base, *extra], capture_output=True, text=True)
        assert completed.returncode == 1 and message in completed.stderr
        assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr


def test_an_adapter_for_other_classes_is_refused(setup, tmp_path):
    make_image_tree(tmp_path / "other", {"x": 8, "y": 4, "z": 4})
    ingest(
        get_source("imagefolder", path=str(tmp_path / "other"), dataset="o"),
        tmp_path / "o",
        split=SplitSettings(val_fraction=0.0),
    )
    recipe = load_recipe(setup / "tiny.yaml")
    with pytest.raises(DataError, match="was trained on classes"):
        run_sample(recipe, setup / "adapter", tmp_path / "o", tmp_path / "s")


def test_dataset_format_conversion_keeps_the_generators_size():
    rgb = np.random.default_rng(0).integers(0, 256, (3, 16, 16), dtype=np.uint8)
    assert (to_dataset_format(rgb, 3) == rgb.transpose(1, 2, 0)).all()
    grey = to_dataset_format(rgb, 1)
    assert grey.shape == (16, 16, 1) and grey[0, 0, 0] == round(rgb[:, 0, 0].mean())
    assert (to_dataset_format(rgb[:1], 3) == rgb[:1].transpose(1, 2, 0)).all()


@pytest.mark.slow
def test_accelerate_launch_shards_the_plan_over_two_processes(setup, tmp_path):
    """Two CPU processes make disjoint batches; the merged set equals a single-process run."""
    _sample(setup, tmp_path / "single")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "synthdata",
        "sample",
        "--recipe",
        str(setup / "tiny.yaml"),
        "--adapter",
        str(setup / "adapter"),
        "--dataset",
        str(setup / "d"),
        "--out",
        str(tmp_path / "double"),
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "process 2/2" in completed.stdout + completed.stderr
    single, double = _files(tmp_path / "single"), _files(tmp_path / "double")
    assert {k: v for k, v in single.items() if k.endswith((".png", ".csv", ".tar"))} == {
        k: v for k, v in double.items() if k.endswith((".png", ".csv", ".tar"))
    }
