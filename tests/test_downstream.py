"""The utility stage: equal budgets, an unseen test split, resume, figures, augmentation."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import make_sampling_setup, paint_synthetic
from typer.testing import CliRunner

from synthdata.classify.train import ClassifierSettings
from synthdata.cli import app
from synthdata.config.recipe import UtilitySettings, load_recipe
from synthdata.data.card import read_card
from synthdata.data.leaks import pixel_hashes
from synthdata.data.manifest import read_manifest, write_manifest
from synthdata.data.tensors import load_split
from synthdata.downstream import runner as utility_runner
from synthdata.downstream.augment import Augmentation, TransformSpec
from synthdata.downstream.batches import SyntheticMixing
from synthdata.downstream.budget import BudgetSettings
from synthdata.downstream.metrics import interval, rare_classes, score
from synthdata.errors import DataError, RecipeError
from synthdata.hashing import file_sha256
from synthdata.reporting.stage_files import StageFiles
from synthdata.stages.report import run_report
from synthdata.stages.sample import run_sample
from synthdata.stages.utility import run_utility
from synthdata.stages.validate import run_validate

VALIDATE = "{classifier: {steps: 60, batch_size: 32}, resamples: 2, features: [domain], gates: {min_fill: 0.0, max_near_copy_fraction: null, min_diversity_ratio: null}}"
AUGMENT = [
    TransformSpec("albumentations.HorizontalFlip", {"p": 0.5}),
    TransformSpec("monai.RandScaleIntensity", {"factors": 0.1, "prob": 0.5}),
]
SETTINGS = UtilitySettings(
    arms=["real", "real-oversampled", "real-augmented", "real+synth", "real+synth-augmented"],
    seeds=[0, 1],
    classifier=ClassifierSettings(steps=12, batch_size=16, width=4),
    augmentation=AUGMENT,
    budget=BudgetSettings(rule="steps", double=False, curve_points=3),
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = make_sampling_setup(tmp_path_factory.mktemp("utility"), validate=VALIDATE, coloured=True)
    recipe = load_recipe(root / "tiny.yaml")
    run_sample(recipe, root / "adapter", root / "d", root / "synthetic")
    paint_synthetic(root / "synthetic", lambda name: name)
    run_validate(recipe, root / "d", root / "synthetic", root / "adapter", root / "validated")
    return root


def _utility(setup, tmp_path, settings=SETTINGS, **kwargs):
    kwargs.setdefault("synthetic", setup / "validated")
    return run_utility(
        load_recipe(setup / "tiny.yaml"),
        setup / "d",
        work=tmp_path / "work",
        files=StageFiles(figures=tmp_path / "utility.json"),
        report=tmp_path / "report",
        settings=settings,
        **kwargs,
    )


def test_every_arm_gets_the_same_steps_batch_and_seeds(setup, tmp_path):
    result = _utility(setup, tmp_path)
    metrics = json.loads((tmp_path / "utility.json").read_text())
    logs = [r["log"] for r in metrics["runs"]]
    assert len(logs) == len(SETTINGS.arms) * len(SETTINGS.seeds)
    assert {(log["steps"], log["batch_size"], log["images_seen"]) for log in logs} == {(12, 16, 12 * 16)}
    for arm in SETTINGS.arms:
        assert sorted(r["seed"] for r in metrics["runs"] if r["arm"] == arm) == [0, 1]
    with_synth = {r["arm"] for r in metrics["runs"] if r["log"]["synthetic_images"] > 0}
    assert with_synth == {a for a in SETTINGS.arms if "synth" in a}
    for arm, figures in result.arms.items():
        for name in ("accuracy", "balanced_accuracy", "macro_f1", "rare_third_recall"):
            low, high = figures[name]["ci95"]
            assert 0.0 <= figures[name]["mean"] <= 1.0 and low <= figures[name]["mean"] <= high, (arm, name)
    assert metrics["rare_classes"] == ["c"]  # fewest train images of a 30/12/8 split
    html = (tmp_path / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "Equal budget" in html and "Verdict" in html
    assert "set by hand" in metrics["budget"]["text"] and all(len(r["val"]["curve"]) == 3 for r in metrics["runs"])


def test_the_test_split_never_enters_training(setup, tmp_path):
    result = _utility(setup, tmp_path, settings=replace(SETTINGS, arms=["real", "real+synth"], seeds=[0]))
    record = result.metrics["leak_check"]
    test_images, _, _ = load_split(setup / "d", "test", size=32, channels=3)
    train_images, _, _ = load_split(setup / "d", "train", size=32, channels=3)
    synthetic_images, _, _ = load_split(setup / "validated", "train", size=32, channels=3)
    assert record["shared"] == 0 and record["test_images"] == len(test_images)
    assert record["real_images_checked"] == len(train_images) and record["synthetic_adapted_images_checked"] == len(
        synthetic_images
    )
    assert not set(pixel_hashes(test_images)) & (set(pixel_hashes(train_images)) | set(pixel_hashes(synthetic_images)))


def test_the_budget_is_chosen_on_validation_and_the_best_classical_arm_trains_at_twice_it(setup, tmp_path):
    arms = [
        "real",
        "real-oversampled",
        "real-logit-adjusted-augmented",
        "real-oversampled-cutmix",
        "real+synth-oversampled-augmented",
    ]
    settings = replace(
        SETTINGS,
        arms=arms,
        synthetic=SyntheticMixing(share=0.25, loss_weight=0.5),
        budget=BudgetSettings(epochs=2, max_epochs=8, tolerance=1.0, curve_points=2),
    )
    result = _utility(setup, tmp_path, settings=settings)
    budget, runs = result.metrics["budget"], result.runs
    # tolerance 1: no doubling can pay, so the ladder stops after its second rung at the first
    train = sum(result.metrics["train_counts"].values())
    assert [r["steps"] for r in budget["rungs"]] == [math.ceil(2 * train / 16), 2 * math.ceil(2 * train / 16)]
    assert (
        budget["steps"] == budget["rungs"][0]["steps"]
        and budget["converged"] is True
        and "converged" in budget["text"]
    )
    reference = next(r for r in runs if r["arm"] == "real-oversampled" and r["seed"] == 0)
    assert (
        budget["rungs"][0]["val_balanced_accuracy"] == reference["val"]["balanced_accuracy"]
    )  # the validation figure, never test
    doubled = budget["doubled"]
    val = {a: sum(r["val"]["balanced_accuracy"] for r in runs if r["arm"] == a) / 2 for a in arms if "synth" not in a}
    assert doubled == max(val, key=val.get)
    assert {r["log"]["steps"] for r in runs if r["arm"] != doubled + "@2x"} == {budget["steps"]}
    assert {r["log"]["steps"] for r in runs if r["arm"] == doubled + "@2x"} == {2 * budget["steps"]}
    assert doubled + "@2x" in result.arms and result.metrics["goal"]["evaluated"]
    # one training per distinct (arm, seed, steps): the ladder's runs are the arms' own
    distinct = {(r["arm"].removesuffix("@2x"), r["seed"], r["log"]["steps"]) for r in runs} | {
        ("real-oversampled", 0, 2 * budget["steps"])
    }
    assert len(list((tmp_path / "work").glob("*.json"))) == len(distinct)
    synthetic = [r["log"] for r in runs if "synth" in r["arm"]]
    assert all(log["synthetic_share"] == 0.25 and log["synthetic_loss_weight"] == 0.5 for log in synthetic)
    assert all(r["log"]["logit_adjusted"] for r in runs if "logit" in r["arm"]) and {
        r["log"]["mix"] for r in runs
    } == {None, "cutmix"}
    assert any("won with" in line for line in result.metrics["verdict"])
    assert any(f"Against {doubled} at twice the steps" in line for line in result.metrics["verdict"])
    # the leak check covers the validation split too
    assert result.metrics["leak_check"]["val_images_checked"] > 0


def test_plateau_needs_a_validation_split_and_image_size_follows_the_dataset(setup, tmp_path):
    result = _utility(setup, tmp_path, settings=replace(SETTINGS, arms=["real"], seeds=[0]))
    native = read_card(setup / "d").width
    assert result.metrics["image_size"] == native and result.runs[0]["log"]["image_size"] == native
    larger = _utility(
        setup,
        tmp_path / "larger",
        settings=replace(SETTINGS, arms=["real"], seeds=[0], image_size=2 * native, model="monai:resnet10"),
    )
    assert larger.runs[0]["log"]["image_size"] == 2 * native and larger.metrics["model"] == "monai:resnet10"


def test_the_plateau_rule_without_a_validation_split_is_one_clear_error(setup, tmp_path):
    from conftest import make_image_tree

    from synthdata.config.recipe import SplitSettings
    from synthdata.data.ingest import ingest
    from synthdata.data.sources import get_source

    make_image_tree(tmp_path / "tree", {"a": 10, "b": 6})
    ingest(
        get_source("imagefolder", path=str(tmp_path / "tree"), dataset="n"),
        tmp_path / "n",
        split=SplitSettings(val_fraction=0.0, test_fraction=0.3),
    )
    with pytest.raises(DataError, match="no 'val' images, which utility.budget.rule 'plateau' needs"):
        run_utility(
            load_recipe(setup / "tiny.yaml"),
            tmp_path / "n",
            work=tmp_path / "w",
            settings=replace(SETTINGS, arms=["real"], budget=BudgetSettings()),
        )


def test_a_test_image_planted_in_the_synthetic_set_stops_the_stage(setup, tmp_path):
    planted = tmp_path / "planted"
    shutil.copytree(setup / "validated", planted)
    frame, real = read_manifest(planted), read_manifest(setup / "d")
    test_row = real[real["split"] == "test"].iloc[0]
    target = planted / frame.loc[frame.index[0], "relpath"]
    target.write_bytes((setup / "d" / test_row["relpath"]).read_bytes())  # same pixels, another name
    frame.loc[frame.index[0], "sha256"] = file_sha256(target)
    write_manifest(frame, planted)
    for arms in (["real+synth"], ["real-logit-adjusted", "real+synth-oversampled-augmented"]):
        with pytest.raises(DataError, match="same pixels as test images"):
            _utility(setup, tmp_path, synthetic=planted, settings=replace(SETTINGS, arms=arms, seeds=[0]))
        assert not list((tmp_path / "work").glob("*.json"))  # stopped before any training


def test_a_rerun_trains_nothing_and_gives_the_same_figures(setup, tmp_path, monkeypatch):
    settings = replace(SETTINGS, arms=["real", "real-augmented"], seeds=[0])
    first = _utility(setup, tmp_path, settings=settings)

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(utility_runner, "train_classifier", refuse)
    second = _utility(setup, tmp_path, settings=settings)
    assert second.arms == first.arms


def test_two_fresh_runs_give_identical_figures(setup, tmp_path):
    settings = replace(SETTINGS, arms=["real-augmented"], seeds=[3])
    one = _utility(setup, tmp_path / "one", settings=settings)
    two = _utility(setup, tmp_path / "two", settings=settings)
    assert one.runs[0]["log"]["losses"] == two.runs[0]["log"]["losses"] and one.arms == two.arms


def test_synthetic_arms_need_a_synthetic_set_from_this_dataset(setup, tmp_path):
    with pytest.raises(DataError, match="give --synthetic"):
        _utility(setup, tmp_path, synthetic=None)
    with pytest.raises(DataError, match="give --scratch"):
        _utility(setup, tmp_path, settings=replace(SETTINGS, arms=["real+synth-scratch"]))
    other = tmp_path / "other"
    shutil.copytree(setup / "validated", other)
    frame = read_manifest(other)
    frame["source_manifest_sha256"] = "0" * 64
    write_manifest(frame, other)
    with pytest.raises(DataError, match="made from another dataset"):
        _utility(setup, tmp_path, synthetic=other)


def test_report_stage_writes_the_page_and_closes_the_pipeline_run(setup, tmp_path):
    import mlflow

    _utility(setup, tmp_path, settings=replace(SETTINGS, arms=["real", "real+synth"], seeds=[0, 1]))
    metrics, reports = tmp_path / "metrics", tmp_path / "reports"
    metrics.mkdir()
    shutil.move(tmp_path / "utility.json", metrics / "utility-figures.json")
    shutil.move(tmp_path / "report", reports / "utility")
    recipe = load_recipe(setup / "tiny.yaml")
    run_validate(
        recipe,
        setup / "d",
        setup / "synthetic",
        setup / "adapter",
        tmp_path / "v",
        files=StageFiles(figures=metrics / "validate-figures.json"),
    )
    result = run_report("tiny", metrics, reports)
    html = result.path.read_text()
    assert "Headline" in html and "real+synth" in html and "data:image/png;base64," in html
    assert [row[0] for row in result.headline] == ["real", "real+synth"]
    run = mlflow.get_run(result.pipeline_run)
    assert run.info.status == "FINISHED" and "real_synth.balanced_accuracy" in run.data.metrics
    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{result.pipeline_run}'", search_all_experiments=True
    )
    assert {"utility", "validate"} <= set(children["tags.stage"])


def test_cli_prints_the_headline_table(setup, tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        (setup / "tiny.yaml").read_text()
        + "utility: {arms: [real, real+synth], seeds: [0], classifier: {steps: 5, batch_size: 8, width: 4}}\n"
    )
    result = CliRunner().invoke(
        app,
        [
            "utility",
            "--recipe",
            str(recipe),
            "--dataset",
            str(setup / "d"),
            "--synthetic",
            str(setup / "validated"),
            "--work",
            str(tmp_path / "w"),
            "--metrics",
            str(tmp_path / "u.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "balanced accuracy" in result.output and "real+synth" in result.output


def test_cli_budget_overrides_choose_the_rule_and_bad_ones_are_one_line(setup, tmp_path, monkeypatch, capsys):
    from test_bad_input import run_cli

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        (setup / "tiny.yaml").read_text()
        + "utility: {arms: [real], seeds: [0], classifier: {batch_size: 8, width: 4}, budget: {curve_points: 2}}\n"
    )
    base = ["utility", "--recipe", str(recipe), "--dataset", str(setup / "d"), "--work", str(tmp_path / "w")]
    result = CliRunner().invoke(app, [*base, "--epochs", "1", "--figures", str(tmp_path / "u.json")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "u.json").read_text())
    train = sum(metrics["train_counts"].values())
    assert metrics["budget"]["rule"] == "epochs" and metrics["steps"] == math.ceil(train / 8)
    assert {r["arm"] for r in metrics["runs"]} == {
        "real",
        "real@2x",
    }  # the only classical arm, also at twice the budget
    capsys.readouterr()
    for bad in (["--epochs", "nan"], ["--steps", "0"], ["--epochs", "-1"]):
        code, _, err = run_cli([*base, *bad], monkeypatch, capsys)
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and lines[0].startswith("error: bad override"), err


def test_scores_on_known_answers():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    assert score(labels, labels, ["a", "b", "c"], ["c"])["balanced_accuracy"] == 1.0
    always_a = score(torch.zeros(8, dtype=torch.long), labels, ["a", "b", "c"], ["b", "c"])
    assert always_a["accuracy"] == 0.5 and always_a["balanced_accuracy"] == pytest.approx(1 / 3)
    assert always_a["rare_third_recall"] == 0.0 and always_a["recall"]["a"] == 1.0
    assert rare_classes({"a": 100, "b": 5, "c": 5, "d": 50, "e": 1, "f": 9}) == [
        "b",
        "e",
    ]  # 2 of 6; b wins the tie with c
    assert rare_classes({"a": 3, "b": 2, "c": 1, "d": 4}) == ["b", "c"]  # ceil(4 / 3) = 2
    assert interval([0.5, 0.5, 0.5])["ci95"] == [0.5, 0.5]
    narrow = interval([0.4, 0.5, 0.6])  # sd 0.1, t(0.975, 2) = 4.303
    assert narrow["ci95"][1] - narrow["mean"] == pytest.approx(4.303 * 0.1 / np.sqrt(3), rel=1e-3)
    assert interval([0.0, 0.5, 1.0])["ci95"] == [0.0, 1.0]  # a rate's interval stays inside [0, 1]


def test_augmentation_is_seeded_shape_preserving_and_uses_both_libraries():
    augment = Augmentation(
        [
            TransformSpec("albumentations.HorizontalFlip", {"p": 1.0}),
            TransformSpec("monai.RandScaleIntensity", {"factors": 0.5, "prob": 1.0}),
        ]
    )
    batch = torch.linspace(-1, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)
    one = augment(batch, torch.Generator().manual_seed(0))
    assert one.shape == batch.shape and one.min() >= -1 and one.max() <= 1
    assert torch.equal(one, augment(batch, torch.Generator().manual_seed(0)))
    assert not torch.equal(one, augment(batch, torch.Generator().manual_seed(1)))
    # the flip happened: after undoing it, what remains is a per-image intensity scale about 0 in [0, 1]
    unflipped = (one.flip(-1) + 1) / 2
    ratio = unflipped / ((batch + 1) / 2).clamp_min(1e-6)
    inside = ((batch + 1) / 2 > 0.05) & (unflipped < 0.99)
    assert ratio[0][inside[0]].std() < 1e-3


@pytest.mark.parametrize(
    ("augmentation", "message"),
    [
        ("[{transform: albumentations.HorizontalFlop}]", "no class HorizontalFlop"),
        ("[{transform: albumentations.HorizontalFlip, params: {q: 1}}]", "rejects its params"),
        ("[{transform: torchvision.RandomCrop}]", "library one of"),
        ("[{transform: monai.ScaleIntensity}]", "not a random MONAI transform"),
        (
            "[{transform: monai.RandScaleIntensity, params: {factors: 0.1}, p: 1}]",
            "unknown key 'utility.augmentation\\[0\\].p'",
        ),
    ],
)
def test_bad_augmentation_in_a_recipe_is_one_clear_error(tmp_path, augmentation, message):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: r\ndomain: medical\ndata: {{source: pbc}}\nutility: {{augmentation: {augmentation}}}\n")
    with pytest.raises(RecipeError, match=message):
        load_recipe(recipe)


def test_augmented_arms_need_an_augmentation_and_names_are_checked():
    assert "real-augmented" not in UtilitySettings().arms
    with pytest.raises(ValueError, match="augmentation is empty"):
        UtilitySettings(arms=["real-augmented"])
    with pytest.raises(ValueError, match=r"unknown arm 'real\+gan'"):
        UtilitySettings(arms=["real+gan"])
