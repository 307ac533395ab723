"""Stage: does the synthetic set make a downstream model better on the rare classes?

Each arm (``synthdata.downstream.arms``) trains the same network (``utility.model``, at
``utility.image_size``) for the same number of optimizer steps, batch size and seeds, on the
long-tailed real train split with or without oversampling, domain augmentation, logit
adjustment, mixup / CutMix and synthetic images. The steps come from a rule
(``synthdata.downstream.budget``): by default where the real reference arm's validation accuracy
stops rising, so no arm wins by learning faster; the best classical arm also trains at twice
that. Each model is scored on the real *test* split, which nothing else in synthdata reads and
no choice here depends on. Before training, every training and validation image's pixels are
hashed and compared with every test image's: one match stops the stage.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from synthdata.atomic import build_folder, write_text
from synthdata.config.recipe import Recipe
from synthdata.data.card import read_card
from synthdata.data.leaks import check_disjoint
from synthdata.data.manifest import manifest_hash, read_manifest, verify_dataset
from synthdata.data.tensors import load_split
from synthdata.downstream.arms import ARMS, DOUBLED, arm_of
from synthdata.downstream.augment import Augmentation
from synthdata.downstream.metrics import HEADLINE, class_counts, figure_text, rare_classes, summarise
from synthdata.downstream.runner import ArmRunner, Pool, run_arms
from synthdata.downstream.settings import UtilitySettings
from synthdata.downstream.verdict import GOAL, goal, verdict
from synthdata.errors import DataError
from synthdata.tracking.mlflow_run import stage_run


@dataclass
class UtilityResult:
    arms: dict[str, dict[str, Any]]
    runs: list[dict[str, Any]]
    metrics: dict[str, Any]
    paths: list[Path]
    seconds: float


def _load_synthetic(folder: Path, classes: list[str], dataset_manifest: str, channels: int, size: int) -> Pool:
    card = read_card(folder)
    if list(card.classes) != classes:
        raise DataError(f"{folder}: synthetic classes {list(card.classes)} differ from the dataset's {classes}")
    frame = read_manifest(folder)
    sources = set(frame["source_manifest_sha256"]) if "source_manifest_sha256" in frame else set()
    if sources != {dataset_manifest}:
        raise DataError(
            f"{folder}: synthetic set was made from another dataset (source manifest {sorted(sources)[:1]}), not this one"
        )
    images, labels, _ = load_split(folder, "train", size=size, channels=channels)
    return Pool(images, labels, manifest_hash(frame))  # the rows read, whatever the card says


def run_utility(
    recipe: Recipe,
    dataset: Path,
    *,
    synthetic: Path | None = None,
    scratch: Path | None = None,
    work: Path | None = None,
    metrics_path: Path | None = None,
    report: Path | None = None,
    settings: UtilitySettings | None = None,
) -> UtilityResult:
    settings = settings or recipe.utility
    started = time.monotonic()
    verified = verify_dataset(dataset)
    card = verified.card
    classes, channels = list(card.classes), card.channels
    size = settings.image_size or max(card.width, card.height)
    needed = {ARMS[a].synthetic for a in settings.arms} - {None}
    sets = {"adapted": synthetic, "scratch": scratch}
    for kind in sorted(needed):
        if sets[kind] is None:
            option = "--synthetic" if kind == "adapted" else "--scratch"
            raise DataError(
                f"arms {[a for a in settings.arms if ARMS[a].synthetic == kind]} need a synthetic set: give {option}"
            )
    has_val = sum(card.counts.get("val", {}).values()) > 0
    if settings.budget.rule == "plateau" and not has_val:  # before any image is loaded
        raise DataError(
            f"{dataset}: no 'val' images, which utility.budget.rule 'plateau' needs; use rule 'epochs' or 'steps'"
        )
    real = Pool(*load_split(dataset, "train", size=size, channels=channels)[:2], verified.manifest_sha256)
    test = Pool(*load_split(dataset, "test", size=size, channels=channels)[:2], verified.manifest_sha256)
    val = (
        Pool(*load_split(dataset, "val", size=size, channels=channels)[:2], verified.manifest_sha256)
        if has_val
        else None
    )
    pools = {
        kind: _load_synthetic(sets[kind], classes, verified.manifest_sha256, channels, size) for kind in sorted(needed)
    }
    leak = check_disjoint(
        test.images,
        real=real.images,
        **({"val": val.images} if val else {}),
        **{f"synthetic_{k}": p.images for k, p in pools.items()},
    )
    train_counts = class_counts(real.labels, classes)
    rare = rare_classes(train_counts, settings.rare_fraction)
    reference = ARMS.get(settings.budget.reference_arm) if settings.budget.rule == "plateau" else None
    augmented = any(ARMS[a].augmented for a in settings.arms) or (reference is not None and reference.augmented)
    domain = Augmentation(settings.augmentation) if augmented else None
    work = work or (dataset.parent / f".{dataset.name}.utility.work")
    work.mkdir(parents=True, exist_ok=True)
    params = {
        "utility": asdict(settings),
        "dataset": dataset.name,
        "synthetic": {k: str(sets[k]) for k in sorted(needed)},
    }
    with stage_run("utility", recipe.name, params, output=work) as run:
        runner = ArmRunner(settings, classes, real, val, test, pools, rare, work, size, domain)
        outcome = run_arms(runner)
        runs = outcome.runs
        names = list(dict.fromkeys(r["arm"] for r in runs))
        arms = {
            name: {"description": _description(name), **summarise([r for r in runs if r["arm"] == name], classes)}
            for name in names
        }
        metrics = {
            "arms": arms,
            "rare_classes": rare,
            "train_counts": train_counts,
            "test_counts": class_counts(test.labels, classes),
            "seeds": list(settings.seeds),
            "steps": outcome.budget.steps,
            "batch_size": settings.classifier.batch_size,
            "model": settings.model,
            "image_size": size,
            "budget": {**asdict(outcome.budget), "text": outcome.budget.describe(), "doubled": outcome.doubled},
            "leak_check": leak,
            "goal": goal(arms),
            "runs": runs,
        }
        metrics["verdict"] = verdict(metrics)
        # tracking takes the figures before the report and the metrics file are published
        for name, figures in arms.items():
            run.log_metrics({f"{name}.{m}": figures[m]["mean"] for m in HEADLINE})
        run.log_metrics({f"{r['arm']}.seed{r['seed']}.seconds": r["log"]["seconds"] for r in runs})
        run.log_metrics({"budget.steps": outcome.budget.steps, "budget.epochs": outcome.budget.epochs})
        run.set_tags({"test_pixels_sha256": leak["test_pixels_sha256"], "budget_rule": outcome.budget.rule})
        paths = build_folder(report, lambda folder: _report(folder, recipe, metrics, classes)) if report else []
        if metrics_path is not None:
            # wall-clock seconds stay out of the metrics file (MLflow and the report have them):
            # the same inputs and seeds then give the same file, byte for byte
            untimed = {
                **metrics,
                "runs": [{**r, "log": {k: v for k, v in r["log"].items() if k != "seconds"}} for r in runs],
            }
            paths.append(write_text(metrics_path, json.dumps(untimed, indent=2) + "\n"))
        for path in paths:
            run.log_artifact(path, "utility")
    return UtilityResult(arms, runs, metrics, paths, time.monotonic() - started)


def _description(name: str) -> str:
    arm = arm_of(name)
    return arm.description + (", at twice the budget" if name.endswith(DOUBLED) else "")


def _report(folder: Path, recipe: Recipe, metrics: dict[str, Any], classes: list[str]) -> list[Path]:
    from synthdata.reporting.html import HtmlReport
    from synthdata.reporting.plots import arm_intervals, recall_heatmap, training_curves

    folder.mkdir(parents=True, exist_ok=True)
    arms = metrics["arms"]
    order = sorted(classes, key=lambda c: metrics["train_counts"][c])
    bars = arm_intervals(
        arms,
        ["balanced_accuracy", "rare_third_recall"],
        folder / "arms.png",
        title=f"{recipe.name}: test split, {len(metrics['seeds'])} seeds, {metrics['steps']} steps each",
    )
    heat = recall_heatmap(
        {a: [f["recall"][c]["mean"] for c in order] for a, f in arms.items()},
        order,
        [metrics["train_counts"][c] for c in order],
        folder / "recall.png",
        title=f"{recipe.name}: test recall per class",
    )
    curves = training_curves(
        {a: [r["val"]["curve"] for r in metrics["runs"] if r["arm"] == a] for a in arms},
        folder / "curves.png",
        title=f"{recipe.name}: validation split during training, every arm and seed",
        budget=metrics["steps"],
    )
    page = HtmlReport(f"{recipe.name}: downstream utility")
    page.text(
        f"Each arm trains the same network ({metrics['model']} at {metrics['image_size']} px; {metrics['steps']} optimizer steps, "
        f"batch {metrics['batch_size']}, seeds {metrics['seeds']}) and is scored on the real test split "
        f"({metrics['leak_check']['test_images']} images, none of which share pixels with any training or validation image). "
        f"Intervals: 95% Student-t over seeds. Rare classes (fewest training images): {', '.join(metrics['rare_classes'])}."
    )
    page.heading("Budget")
    page.text("Rule: " + metrics["budget"]["text"])
    if metrics["budget"].get("rungs"):
        page.table(
            [
                "steps",
                "epochs of real train",
                f"{metrics['budget']['reference_arm']} validation balanced accuracy",
                "standard error",
            ],
            [
                [
                    f"{r['steps']:.0f}",
                    f"{r['epochs']:.1f}",
                    f"{r['val_balanced_accuracy']:.3f}",
                    f"{r['standard_error']:.3f}",
                ]
                for r in metrics["budget"]["rungs"]
            ],
        )
    if metrics["budget"].get("doubled"):
        page.text(
            f"{metrics['budget']['doubled']}, the best classical arm on the validation split, also trained at twice the budget "
            f"({2 * metrics['steps']} steps) as {metrics['budget']['doubled']}{DOUBLED}."
        )
    page.image(
        curves, "validation balanced accuracy during training: one line per arm and seed, synthetic arms dashed"
    )
    page.heading("Verdict")
    page.bullets(metrics["verdict"])
    page.heading("Headline")
    page.table(
        ["arm", "what it trains on", *HEADLINE],
        [[a, f["description"], *[figure_text(f[m]) for m in HEADLINE]] for a, f in arms.items()],
    )
    page.image(bars, "balanced accuracy and mean recall of the rarest third of classes, mean and 95% interval")
    g = metrics["goal"]
    page.heading("Does synthetic data help?")
    if not g.get("evaluated"):
        page.text(f"Not evaluated: {g['reason']}.")
    else:
        page.table(
            ["metric", "best classical", "best synthetic", "gain", "wanted", "intervals separate", "met"],
            [_goal_row(m, g[m]) for m in GOAL],
            row_classes=["pass" if g[m]["met"] else "fail" for m in GOAL],
        )
    page.heading("Per-class recall")
    page.image(heat, "mean test recall per class and arm, classes from fewest to most training images")
    page.table(
        ["class", "train images", "test images", *arms],
        [
            [
                c,
                metrics["train_counts"][c],
                metrics["test_counts"][c],
                *[_recall_text(arms[a]["recall"][c]) for a in arms],
            ]
            for c in order
        ],
    )
    page.heading("Equal budget")
    page.table(
        [
            "arm",
            "seed",
            "steps",
            "batch",
            "images seen",
            "train images (synthetic)",
            "validation balanced accuracy",
            "seconds",
        ],
        [
            [
                r["arm"],
                r["seed"],
                r["log"]["steps"],
                r["log"]["batch_size"],
                r["log"]["images_seen"],
                f"{r['log']['train_images']} ({r['log']['synthetic_images']})",
                "n/a" if r["val"]["balanced_accuracy"] is None else f"{r['val']['balanced_accuracy']:.3f}",
                f"{r['log']['seconds']:.0f}",
            ]
            for r in metrics["runs"]
        ],
    )
    return [bars, heat, curves, page.write(folder / "report.html")]


def _recall_text(figure: dict[str, Any]) -> str:
    return figure["reason"] if figure["mean"] is None else f"{figure['mean']:.3f}"


def _goal_row(metric: str, verdict: dict[str, Any]) -> list[Any]:
    separate = verdict["reason"] if verdict["intervals_separate"] is None else verdict["intervals_separate"]
    return [
        metric,
        verdict["best_classical"],
        verdict["best_synthetic"],
        f"{verdict['gain']:+.3f}",
        f"+{verdict['wanted']:.2f}",
        separate,
        verdict["met"],
    ]
