"""The validation stage: provenance check, filter and refill, gates, outputs."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
from conftest import make_sampling_setup, paint_synthetic

from synthdata.config.recipe import GateSettings, load_recipe
from synthdata.data.card import read_card
from synthdata.data.manifest import read_manifest
from synthdata.errors import DataError
from synthdata.hashing import file_sha256
from synthdata.reporting.stage_files import StageFiles
from synthdata.stages.sample import run_sample
from synthdata.stages.validate import run_validate
from synthdata.validation.gates import GateError

VALIDATE = "{classifier: {steps: 60, batch_size: 32}, resamples: 3, gates: {min_fill: 0.0, max_near_copy_fraction: null, min_diversity_ratio: null}}"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = make_sampling_setup(tmp_path_factory.mktemp("validate"), validate=VALIDATE, coloured=True)
    run_sample(load_recipe(root / "tiny.yaml"), root / "adapter", root / "d", root / "synthetic")
    # A tiny model trained for seconds paints grey noise; stand in for a good generator by
    # painting every image its class's colour (hashes updated: provenance stays consistent).
    paint_synthetic(root / "synthetic", lambda name: name)
    return root


def _validate(setup, tmp_path, synthetic=None, **kwargs):
    recipe = load_recipe(setup / "tiny.yaml")
    if "gates" in kwargs:
        kwargs["settings"] = replace(recipe.validate, gates=kwargs.pop("gates"))
    return run_validate(
        recipe,
        setup / "d",
        synthetic or setup / "synthetic",
        setup / "adapter",
        tmp_path / "accepted",
        report=tmp_path / "report",
        files=StageFiles(tmp_path / "headline.json", tmp_path / "metrics.json"),
        **kwargs,
    )


def _copy_set(setup, tmp_path):
    target = tmp_path / "synthetic"
    shutil.copytree(setup / "synthetic", target)
    return target


def test_validated_set_has_figures_floors_report_and_croissant(setup, tmp_path):
    result = _validate(setup, tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["passed"] is True
    for name in (
        "FD-domain",
        "KID-domain",
        "precision-domain",
        "recall-domain",
        "density-domain",
        "coverage-domain",
        "FD-EffNet",
    ):
        figure = metrics["overall"][name]
        assert set(figure) == {"value", "ci95", "floor", "n"} and figure["n"] >= 3
    assert set(metrics["classes"]) == set(result.quota)
    assert (
        metrics["histogram"]["after"]["c"]
        == metrics["histogram"]["before"]["c"] + result.metrics.classes["c"]["accepted"]
    )
    frame = read_manifest(tmp_path / "accepted")
    assert len(frame) == result.accepted and all(
        file_sha256(tmp_path / "accepted" / p) == s for p, s in zip(frame["relpath"], frame["sha256"], strict=True)
    )
    croissant = json.loads((tmp_path / "accepted" / "croissant.json").read_text())
    assert croissant["@type"] == "sc:Dataset" and croissant["rai:hasSyntheticData"] is True
    for key in ("rai:dataCollection", "rai:dataBiases", "rai:dataLimitations", "isBasedOn", "prov:wasDerivedFrom"):
        assert croissant[key]
    _assert_croissant_loads(tmp_path / "accepted", frame)
    html = (tmp_path / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4 and "floor" in html
    assert (
        read_card(tmp_path / "accepted").derived_from["synthetic_manifest_sha256"]
        == read_card(setup / "synthetic").manifest_sha256
    )


def _assert_croissant_loads(folder, frame):
    """The MLCommons reference loader validates the card (file checksums included) and reads
    both record sets: the images, and the provenance rows that reference them."""
    import mlcroissant as mlc

    dataset = mlc.Dataset(jsonld=str(folder / "croissant.json"))
    images = list(dataset.records("images"))
    rows = list(dataset.records("synthetic"))
    assert len(images) == len(rows) == len(frame)
    paths = sorted(r["images/relpath"].decode() for r in images)
    assert paths == sorted(frame["relpath"]) == sorted(r["synthetic/relpath"].decode() for r in rows)
    by_path = {r["images/relpath"].decode(): r["images/label"].decode() for r in images}
    assert all(by_path[p] == label for p, label in zip(frame["relpath"], frame["label_name"], strict=True))
    assert {r["synthetic/adapter_sha256"].decode() for r in rows} == set(frame["adapter_sha256"])


def _filter(setup, max_rounds, **changes):
    recipe = load_recipe(setup / "tiny.yaml")
    return replace(recipe.validate, filter=replace(recipe.validate.filter, max_rounds=max_rounds, **changes))


def test_planted_off_class_images_are_dropped_and_the_rest_kept(setup, tmp_path):
    synthetic = _copy_set(setup, tmp_path)
    frame = read_manifest(synthetic)
    planted = frame.index[frame["label_name"] == "c"][:3]
    frame = paint_synthetic(synthetic, lambda name: "a", planted)  # red "a" images filed as "c"
    # Near-copy checks off: on 8 px colour fields the planted images are also close to red train images.
    result = _validate(setup, tmp_path, synthetic, settings=_filter(setup, 0, drop_near_copies=False))
    accepted = read_manifest(tmp_path / "accepted")
    assert set(frame["id"]) - set(accepted["id"]) == set(frame.loc[planted, "id"])
    assert result.dropped["c"] == {"off-class": 3} and result.regenerated == 0
    assert result.metrics.classes["c"]["fill"] == pytest.approx(1 - 3 / result.quota["c"])


def test_dropped_images_are_replaced_by_new_indices_of_the_same_run(setup, tmp_path):
    synthetic = _copy_set(setup, tmp_path)
    frame = read_manifest(synthetic)
    planted = frame.index[frame["label_name"] == "c"][:3]
    frame = paint_synthetic(synthetic, lambda name: "a", planted)
    result = _validate(setup, tmp_path, synthetic, settings=_filter(setup, 2))
    # The tiny model's replacements are grey noise, judged like any image: asked for, made, judged.
    assert result.regenerated >= 3
    judged = sum(sum(d.values()) for d in result.dropped.values()) + result.accepted
    assert judged == len(frame) + result.regenerated
    accepted = read_manifest(tmp_path / "accepted")
    new = accepted[~accepted["id"].isin(frame["id"])]
    assert (new["sample_index"] > frame.loc[frame["label_name"] == "c", "sample_index"].max()).all()
    assert set(new["sample_run_id"]) <= set(frame["sample_run_id"])


def test_a_tampered_file_fails_the_provenance_check(setup, tmp_path):
    synthetic = _copy_set(setup, tmp_path)
    first = read_manifest(synthetic)["relpath"][0]
    (synthetic / first).write_bytes((synthetic / first).read_bytes()[:-5] + b"xxxxx")
    with pytest.raises(DataError, match="sha256 differs"):
        _validate(setup, tmp_path, synthetic)
    assert not (tmp_path / "accepted").exists()


def test_a_missing_adapter_fails_the_provenance_check(setup, tmp_path):
    adapter = tmp_path / "adapter"
    shutil.copytree(setup / "adapter", adapter)
    (adapter / "adapter_model.safetensors").unlink()
    recipe = load_recipe(setup / "tiny.yaml")
    with pytest.raises(DataError, match="adapter weights missing"):
        run_validate(recipe, setup / "d", setup / "synthetic", adapter, tmp_path / "accepted")


def test_a_failed_gate_exits_naming_metric_and_threshold_and_publishes_nothing(setup, tmp_path):
    with pytest.raises(
        GateError, match=r"FD-domain / floor for overall is [0-9.e+-]+, gate max_fd_ratio needs <= 0\.001"
    ):
        _validate(
            setup,
            tmp_path,
            gates=GateSettings(
                max_fd_ratio=0.001, min_fill=None, max_near_copy_fraction=None, min_diversity_ratio=None
            ),
        )
    assert not (tmp_path / "accepted").exists()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["passed"] is False and (tmp_path / "report" / "report.html").is_file()


def test_held_out_real_images_never_include_the_test_split(setup, tmp_path):
    from synthdata.data.tensors import load_files
    from synthdata.validation.filter import heldout_real

    frame = read_manifest(setup / "d")
    real = heldout_real(setup / "d", None, 8, 3)
    test = load_files(setup / "d", list(frame.loc[frame["split"] == "test", "relpath"]), size=8, channels=3)
    assert len(real.images) == int((frame["split"] == "val").sum())
    test_pixels = {image.numpy().tobytes() for image in test}
    assert not any(image.numpy().tobytes() in test_pixels for image in real.images)
    # With the dataset as its own pool, no train or test image is added either.
    assert len(heldout_real(setup / "d", setup / "d", 8, 3).images) == len(real.images)
