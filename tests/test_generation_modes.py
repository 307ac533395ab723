"""Real-anchored generation: img2img and interpolate, their lineage, and how validation judges them."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import pandas as pd
import pytest
import torch
from conftest import make_sampling_setup

from synthdata.config.recipe import GateSettings, load_recipe
from synthdata.data.card import read_card
from synthdata.data.expectations import validate_dataset
from synthdata.data.images import read_png_text
from synthdata.data.manifest import DERIVED_SOURCE_TYPE, DIGITAL_SOURCE_TYPE, read_manifest
from synthdata.data.tensors import to_uint8, to_unit_range
from synthdata.errors import DataError, RecipeError
from synthdata.reporting.stage_files import StageFiles
from synthdata.sampling.anchors import anchor, source_order, source_pool
from synthdata.sampling.generate import generate, start_index
from synthdata.sampling.jobs import make_item
from synthdata.sampling.model import load_sampling_model
from synthdata.sampling.output import RECORD_FILE
from synthdata.stages.sample import run_sample
from synthdata.stages.validate import run_validate
from synthdata.validation.lineage import check_lineage

VALIDATE = "{classifier: {steps: 30, batch_size: 32}, resamples: 2, features: [domain], gates: {min_fill: null, max_near_copy_fraction: null, min_diversity_ratio: null}}"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return make_sampling_setup(tmp_path_factory.mktemp("modes"), validate=VALIDATE)


@pytest.fixture(scope="module")
def model(setup):
    return load_sampling_model(setup / "adapter", setup / "base")


def _sources(setup, model, count: int = 4) -> torch.Tensor:
    frame = read_manifest(setup / "d")
    pool = source_pool(setup / "d", frame, model.classes, size=model.pixels[1], channels=model.pixels[0])
    ids = pool.ids["a"][:count]
    images = pool.load(ids)
    return to_unit_range(torch.stack([images[i] for i in ids]))


def _generate(model, count: int, seed: int = 7, scheduler: str = "dpm-solver++", **anchors) -> torch.Tensor:
    generators = [torch.Generator().manual_seed(seed + i) for i in range(count)]
    return generate(
        model.backbone,
        model.scheduler,
        torch.zeros(count, dtype=torch.int64),
        shape=model.shape,
        scheduler=scheduler,
        steps=6,
        guidance=2.0,
        generator=generators,
        **anchors,
    )


@pytest.mark.parametrize("scheduler", ["dpm-solver++", "ddim"])
def test_strength_zero_returns_the_source_and_strength_one_is_noise_mode(setup, model, scheduler):
    sources = _sources(setup, model)
    same = _generate(model, 4, scheduler=scheduler, sources=sources, strengths=[0.0] * 4)
    assert torch.equal(to_uint8(same), to_uint8(sources))
    noise = _generate(model, 4, scheduler=scheduler)
    assert torch.equal(_generate(model, 4, scheduler=scheduler, sources=sources, strengths=[1.0] * 4), noise)
    # In between: a real change, and each image's result does not depend on its batch neighbours' strengths.
    mixed = _generate(model, 4, scheduler=scheduler, sources=sources, strengths=[0.5, 1.0, 0.0, 0.5])
    alone = _generate(model, 4, scheduler=scheduler, sources=sources, strengths=[0.5] * 4)
    # (equal up to float rounding: the strength-1 image is denoised in a sub-batch of one)
    assert torch.allclose(mixed[1], noise[1], atol=1e-5) and torch.equal(to_uint8(mixed[2]), to_uint8(sources[2]))
    assert torch.allclose(mixed[[0, 3]], alone[[0, 3]], atol=1e-5)
    assert not torch.allclose(alone, sources, atol=0.02) and not torch.allclose(alone, noise, atol=0.02)


def test_strength_maps_to_the_last_steps_of_the_schedule_as_diffusers_img2img():
    assert [start_index(20, s) for s in (0.0, 0.3, 0.5, 0.99, 1.0)] == [20, 14, 10, 1, 0]
    with pytest.raises(ValueError, match="outside"):
        start_index(20, 1.5)


def test_interpolation_weight_zero_and_one_give_each_sources_variant(setup, model):
    sources = _sources(setup, model)
    partners, others = sources.roll(1, 0), sources.roll(2, 0)
    at = lambda a, b, w: _generate(model, 4, sources=a, strengths=[0.5] * 4, partners=b, weights=[w] * 4)  # noqa: E731
    # Weight 0 depends on the first source only, weight 1 on the second only.
    assert torch.equal(at(sources, partners, 0.0), at(sources, others, 0.0))
    assert torch.equal(at(sources, partners, 1.0), at(others, partners, 1.0))
    assert torch.allclose(at(sources, partners, 1.0), at(partners, sources, 0.0), atol=1e-5)
    half = at(sources, partners, 0.5)
    assert not torch.allclose(half, at(sources, partners, 0.0), atol=0.02)


def test_sources_are_spread_evenly_and_seeded():
    ids = [f"r{i}" for i in range(5)]
    order = source_order("run", "a", ids)
    assert sorted(order) == ids and order == source_order("run", "a", list(reversed(ids)))
    assert order != source_order("other-run", "a", ids) or order != source_order("run", "b", ids)
    items = [anchor(make_item("run", 0, "a", i), order, "interpolate", [0.3, 0.7], 0.5) for i in range(13)]
    uses = Counter(item.sources[0] for item in items)
    assert sorted(uses.values()) == [2, 2, 3, 3, 3]  # 13 over 5: each floor or ceil of 2.6
    assert all(item.sources[0] != item.sources[1] for item in items)
    assert all(0.3 <= item.strength <= 0.7 and item.weight == 0.5 for item in items)
    assert len({item.strength for item in items}) == 13  # drawn per image, from its own seed
    again = anchor(make_item("run", 0, "a", 4), order, "interpolate", [0.3, 0.7], 0.5)
    assert again == items[4]


def test_an_img2img_set_records_its_lineage_everywhere(setup, tmp_path):
    recipe = load_recipe(setup / "tiny.yaml")
    settings = replace(recipe.sample, mode="img2img", strength=[0.3, 0.7])
    result = run_sample(recipe, setup / "adapter", setup / "d", tmp_path / "s", settings=settings)
    frame = read_manifest(tmp_path / "s")
    real = read_manifest(setup / "d")
    train = real[real["split"] == "train"]
    assert (frame["mode"] == "img2img").all() and (frame["digital_source_type"] == DERIVED_SOURCE_TYPE).all()
    assert frame["strength"].between(0.3, 0.7).all() and (frame["interpolation_weight"] == 0.0).all()
    names = dict(zip(train["id"], train["label_name"], strict=True))
    assert all(names[source] == label for source, label in zip(frame["source_ids"], frame["label_name"], strict=True))
    for name, rows in frame.groupby("label_name"):
        uses = rows["source_ids"].value_counts()
        available = int((train["label_name"] == name).sum())
        assert uses.max() - (uses.min() if len(uses) == available else 0) <= 1, name
    validate_dataset(tmp_path / "s", frame, read_card(tmp_path / "s"))  # GE: lineage columns complete and consistent
    row = frame.iloc[0]
    text = read_png_text((tmp_path / "s" / row["relpath"]).read_bytes())
    assert (
        text["source_ids"] == row["source_ids"]
        and text["mode"] == "img2img"
        and float(text["strength"]) == row["strength"]
    )
    assert (
        text["digitalSourceType"] == DERIVED_SOURCE_TYPE
        and "compositeWithTrainedAlgorithmicMedia" in text["XML:com.adobe.xmp"]
    )
    metadata = pd.read_csv(tmp_path / "s" / "metadata.csv")
    assert {"mode", "strength", "source_ids", "interpolation_weight"} <= set(metadata.columns)
    # A noise run is unchanged by the anchoring settings; the img2img run has another id.
    noise = run_sample(recipe, setup / "adapter", setup / "d", tmp_path / "n")
    assert noise.run_id != result.run_id
    plain = read_manifest(tmp_path / "n")
    assert (plain["mode"] == "noise").all() and (plain["source_ids"] == "").all() and (plain["strength"] == 1.0).all()
    assert (plain["digital_source_type"] == DIGITAL_SOURCE_TYPE).all()


def test_a_source_outside_train_or_with_test_pixels_is_refused(setup, model, tmp_path):
    import shutil

    dataset = tmp_path / "d"
    shutil.copytree(setup / "d", dataset)
    frame = read_manifest(dataset)
    pool = source_pool(dataset, frame, model.classes, size=model.pixels[1], channels=model.pixels[0])
    test_row = frame[frame["split"] == "test"].iloc[0]
    with pytest.raises(DataError, match="not in the train split"):
        pool.load([str(test_row["id"])])
    train_row = frame[frame["split"] == "train"].iloc[0]
    (dataset / train_row["relpath"]).write_bytes(
        (dataset / test_row["relpath"]).read_bytes()
    )  # a test image filed as train
    with pytest.raises(DataError, match="pixels of a val or test image"):
        pool.load([str(train_row["id"])])
    with pytest.raises(DataError, match="not a train image of the dataset"):
        check_lineage(
            pd.DataFrame({"id": ["x"], "source_ids": [str(test_row["id"])]}),
            set(frame.loc[frame["split"] == "train", "id"]),
            "set",
        )


def test_strength_settings_are_checked(setup):
    text = (setup / "tiny.yaml").read_text()
    for bad, problem in (("1.5", "must be in"), ("[0.7, 0.3]", "low <= high"), ("[0.1, 0.2, 0.3]", "low <= high")):
        path = setup.parent / "bad.yaml"
        path.write_text(text.replace("sample: {", f"sample: {{mode: img2img, strength: {bad}, "))
        with pytest.raises(RecipeError, match=problem):
            load_recipe(path)


def test_validation_drops_copies_of_the_source_and_reports_lineage(setup, tmp_path):
    import numpy as np
    from PIL import Image

    from synthdata.data.images import encode_png
    from synthdata.data.manifest import write_manifest
    from synthdata.hashing import file_sha256

    recipe = load_recipe(setup / "tiny.yaml")
    settings = replace(recipe.sample, mode="img2img", strength=0.3)
    run_sample(recipe, setup / "adapter", setup / "d", tmp_path / "copies", settings=settings)
    # Every image replaced by its source, pixel for pixel (hashes updated: provenance stays consistent).
    frame, real = read_manifest(tmp_path / "copies"), read_manifest(setup / "d").set_index("id")
    for index, row in frame.iterrows():
        target = tmp_path / "copies" / row["relpath"]
        with Image.open(setup / "d" / real.loc[row["source_ids"], "relpath"]) as image:
            pixels = np.asarray(image.convert("RGB"))
        target.write_bytes(encode_png(pixels, {"id": row["id"]}))  # the source's pixels; the bytes stay unique
        frame.loc[index, "sha256"] = file_sha256(target)
    write_manifest(frame, tmp_path / "copies")
    validate = replace(recipe.validate, filter=replace(recipe.validate.filter, max_rounds=0))
    with pytest.raises(DataError, match="no image passed the filter"):
        run_validate(
            recipe,
            setup / "d",
            tmp_path / "copies",
            setup / "adapter",
            tmp_path / "accepted",
            files=StageFiles(figures=tmp_path / "copies.json"),
            settings=validate,
        )
    figures = json.loads((tmp_path / "copies.json").read_text())
    dropped = figures["filter"]["dropped"]
    assert sum(d.get("duplicate-of-source", 0) for d in dropped.values()) == figures["lineage"]["derived"] > 0
    assert figures["lineage"]["distance_to_source"]["pixel"]["median"] == 0.0
    assert (
        figures["memorisation"]["checked"] == 0
    )  # no image made from noise: the memorisation test has nothing to ask
    # The gate is on by default: an accepted share under 0.8 of the plan fails the stage, naming the class.
    assert GateSettings().min_fill == 0.8


def test_an_interpolated_set_is_validated_with_its_report(setup, tmp_path):
    recipe = load_recipe(setup / "tiny.yaml")
    settings = replace(recipe.sample, mode="interpolate", strength=0.6)
    run_sample(recipe, setup / "adapter", setup / "d", tmp_path / "s", settings=settings)
    frame = read_manifest(tmp_path / "s")
    assert frame["source_ids"].str.count(";").eq(1).all() and frame["interpolation_weight"].between(0.25, 0.75).all()
    validate = replace(recipe.validate, filter=replace(recipe.validate.filter, enabled=False))
    result = run_validate(
        recipe,
        setup / "d",
        tmp_path / "s",
        setup / "adapter",
        tmp_path / "accepted",
        report=tmp_path / "report",
        files=StageFiles(figures=tmp_path / "m.json"),
        settings=validate,
    )
    assert result.accepted == len(frame)
    figures = json.loads((tmp_path / "m.json").read_text())
    assert (
        figures["lineage"]["derived"] == len(frame) and figures["lineage"]["distance_to_source"]["pixel"]["median"] > 0
    )
    html = (tmp_path / "report" / "report.html").read_text()
    assert html.index("Real beside synthetic") < html.index("Gates") and "Distance to the source image" in html
    assert (tmp_path / "report" / "source_distance.png").is_file()
    croissant = json.loads((tmp_path / "accepted" / "croissant.json").read_text())
    assert croissant["sc:digitalSourceType"] == DERIVED_SOURCE_TYPE
    assert {"source_ids", "mode", "strength", "interpolation_weight"} <= {
        f["name"] for rs in croissant["recordSet"] for f in rs["field"]
    }


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction", "sample"])
def test_clean_estimate_and_model_output_are_inverse(prediction):
    from synthdata.sampling.generate import from_clean, to_clean

    torch.manual_seed(0)
    x, output, alpha = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4), torch.tensor(0.37)
    clean = to_clean(output, x, alpha, prediction)
    assert torch.allclose(from_clean(clean, x, alpha, prediction), output, atol=1e-5)
    if prediction == "epsilon":  # x = sqrt(a) x0 + sqrt(1 - a) eps
        assert torch.allclose(alpha.sqrt() * clean + (1 - alpha).sqrt() * output, x, atol=1e-5)
    with pytest.raises(ValueError, match="prediction type"):
        to_clean(output, x, alpha, "flow")


@pytest.fixture(scope="module")
def guide(setup, model):
    from synthdata.classify.train import ClassifierSettings
    from synthdata.sampling.guide import train_guide

    settings = ClassifierSettings(steps=60, batch_size=16, balanced=True, seed=1)
    assert train_guide(setup / "d", 3, model.pixels, 0.0, settings) is None  # scale 0: no guide, nothing trained
    return train_guide(setup / "d", 3, model.pixels, 0.3, settings)


def _class_log_probability(guide, pixels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.log_softmax(guide.model(pixels), dim=1).gather(1, labels.reshape(-1, 1)).squeeze(1)


def test_the_guide_direction_is_unit_rms_and_raises_the_class_probability(setup, model, guide):
    sources = _sources(setup, model)
    labels = torch.tensor([0, 1, 2, 1])
    direction = guide.direction(sources, labels)
    assert direction.shape == sources.shape
    assert torch.allclose(direction.flatten(1).pow(2).mean(1).sqrt(), torch.ones(4), atol=1e-4)
    before = _class_log_probability(guide, sources, labels)
    after = _class_log_probability(guide, sources + 0.01 * direction, labels)
    assert (after > before).all()


def test_classifier_guidance_steers_samples_towards_their_class(model, guide):
    labels = torch.tensor([0, 1, 2] * 4)
    generators = lambda: [torch.Generator().manual_seed(100 + i) for i in range(len(labels))]  # noqa: E731
    common = {"shape": model.shape, "steps": 6, "guidance": 2.0}
    plain = generate(model.backbone, model.scheduler, labels, generator=generators(), **common)
    guided = generate(model.backbone, model.scheduler, labels, generator=generators(), guide=guide, **common)
    assert torch.isfinite(guided).all() and not torch.allclose(plain, guided, atol=1e-3)
    # Deterministic: the same seeds and guide give the same bytes.
    assert torch.equal(
        guided, generate(model.backbone, model.scheduler, labels, generator=generators(), guide=guide, **common)
    )
    assert (
        _class_log_probability(guide, guided, labels).mean()
        > _class_log_probability(guide, plain, labels).mean() + 0.1
    )


def test_classifier_guidance_is_refused_through_a_vae(model, guide):
    from synthdata.errors import SynthdataError

    class Latent:
        vae = object()

    with pytest.raises(SynthdataError, match="pixel-space"):
        generate(Latent(), model.scheduler, torch.zeros(1, dtype=torch.int64), shape=model.shape, guide=guide)


def test_a_classifier_guided_set_has_its_own_run_id_and_validates(setup, tmp_path):
    recipe = load_recipe(setup / "tiny.yaml")
    settings = replace(
        recipe.sample,
        mode="img2img",
        strength=0.5,
        classifier_guidance=0.1,
        guide=replace(recipe.sample.guide, steps=20, batch_size=16),
    )
    guided = run_sample(recipe, setup / "adapter", setup / "d", tmp_path / "g", settings=settings)
    plain = run_sample(
        recipe, setup / "adapter", setup / "d", tmp_path / "p", settings=replace(settings, classifier_guidance=0.0)
    )
    assert guided.run_id != plain.run_id
    record = json.loads((tmp_path / "g" / RECORD_FILE).read_text())
    assert record["settings"]["classifier_guidance"] == 0.1 and record["identity"]["guide"]["seed"] == 1
    frames = read_manifest(tmp_path / "g"), read_manifest(tmp_path / "p")
    assert not set(frames[0]["sha256"]) & set(frames[1]["sha256"])
    # Validation refills with the run's own settings, the guide included (filter strict enough to drop some).
    # (a 20-step judge on 8 px squares may pass nothing: the refill having run is what counts here)
    validate = replace(recipe.validate, filter=replace(recipe.validate.filter, min_confidence=0.9, max_rounds=1))
    try:
        run_validate(
            recipe,
            setup / "d",
            tmp_path / "g",
            setup / "adapter",
            tmp_path / "v",
            settings=validate,
            files=StageFiles(figures=tmp_path / "v.json"),
        )
    except DataError as exc:
        assert "no image passed the filter" in str(exc)
    assert json.loads((tmp_path / "v.json").read_text())["filter"]["regenerated"] > 0
