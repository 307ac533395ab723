"""Stage: does the synthetic set make a downstream model better on the rare classes?

Each arm (``synthdata.utility.arms``) trains the same small ResNet at 32 px for the same number
of optimizer steps, batch size and seeds, on the long-tailed real train split with or without
oversampling, domain augmentation and synthetic images; each model is scored on the real *test*
split, which nothing else in synthdata reads. Before training, every training image's pixels are
hashed and compared with every test image's: one match stops the stage.

A finished (arm, seed) run is kept in the work folder under a fingerprint of everything that
determines it, so a killed stage reruns only the runs it had not finished.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from synthdata.atomic import build_folder, write_text
from synthdata.classify.train import ClassifierSettings, random_shift, run_model, train_classifier
from synthdata.config.recipe import Recipe, UtilitySettings
from synthdata.data.card import read_card
from synthdata.data.manifest import manifest_hash, read_manifest, verify_dataset
from synthdata.errors import DataError
from synthdata.hashing import sha256_bytes
from synthdata.tracking.mlflow_run import log_metrics, set_tags, stage_run
from synthdata.training.tensors import load_split
from synthdata.utility.arms import ARMS, CLASSICAL, Arm
from synthdata.utility.augment import Augmentation
from synthdata.utility.metrics import HEADLINE, figure_text, rare_classes, score, summarise

SIZE = 32
"""The downstream model's input size (pixels)."""
GOAL = {"balanced_accuracy": 0.03, "rare_third_recall": 0.10}
"""What "helps" means: the best synthetic arm beats the best classical arm by this much, with
intervals that do not overlap."""


@dataclass
class Pool:
    images: torch.Tensor
    labels: torch.Tensor
    manifest_sha256: str


@dataclass
class UtilityResult:
    arms: dict[str, dict[str, Any]]
    runs: list[dict[str, Any]]
    metrics: dict[str, Any]
    paths: list[Path]
    seconds: float


def pixel_hashes(images: torch.Tensor) -> list[str]:
    """sha256 of each image's uint8 pixels at the model's size: equal pixels, equal hash,
    whatever the file's encoding or metadata."""
    return [sha256_bytes(image.contiguous().numpy().tobytes()) for image in images]


def check_disjoint(test: torch.Tensor, **training: torch.Tensor) -> dict[str, Any]:
    """Refuse any training image whose pixels equal a test image's; the record of the check."""
    test_hashes = pixel_hashes(test)
    known = set(test_hashes)
    record: dict[str, Any] = {"test_images": len(test_hashes), "test_pixels_sha256": sha256_bytes("".join(sorted(test_hashes)).encode())}
    for name, images in training.items():
        shared = sum(h in known for h in pixel_hashes(images))
        if shared:
            raise DataError(f"{shared} {name} training image(s) have the same pixels as test images; the test split must stay unseen")
        record[f"{name}_images_checked"] = len(images)
    record["shared"] = 0
    return record


def _load_synthetic(folder: Path, classes: list[str], dataset_manifest: str, channels: int) -> Pool:
    card = read_card(folder)
    if list(card.classes) != classes:
        raise DataError(f"{folder}: synthetic classes {list(card.classes)} differ from the dataset's {classes}")
    frame = read_manifest(folder)
    sources = set(frame["source_manifest_sha256"]) if "source_manifest_sha256" in frame else set()
    if sources != {dataset_manifest}:
        raise DataError(f"{folder}: synthetic set was made from another dataset (source manifest {sorted(sources)[:1]}), not this one")
    images, labels, _ = load_split(folder, "train", size=SIZE, channels=channels)
    return Pool(images, labels, manifest_hash(frame))  # the rows read, whatever the card says


def _augment(arm: Arm, domain: Augmentation | None):
    shift = random_shift(2)
    if not arm.augmented:
        return shift
    return lambda batch, generator: domain(shift(batch, generator), generator)


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
    needed = {ARMS[a].synthetic for a in settings.arms} - {None}
    sets = {"adapted": synthetic, "scratch": scratch}
    for kind in sorted(needed):
        if sets[kind] is None:
            option = "--synthetic" if kind == "adapted" else "--scratch"
            raise DataError(f"arms {[a for a in settings.arms if ARMS[a].synthetic == kind]} need a synthetic set: give {option}")
    real_images, real_labels, _ = load_split(dataset, "train", size=SIZE, channels=channels)
    real = Pool(real_images, real_labels, verified.manifest_sha256)
    test_images, test_labels, _ = load_split(dataset, "test", size=SIZE, channels=channels)
    pools = {kind: _load_synthetic(sets[kind], classes, verified.manifest_sha256, channels) for kind in sorted(needed)}
    leak = check_disjoint(test_images, real=real.images, **{f"synthetic_{k}": p.images for k, p in pools.items()})
    train_counts = {name: int((real.labels == i).sum()) for i, name in enumerate(classes)}
    rare = rare_classes(train_counts, settings.rare_fraction)
    domain = Augmentation(settings.augmentation) if any(ARMS[a].augmented for a in settings.arms) else None
    work = work or (dataset.parent / f".{dataset.name}.utility.work")
    work.mkdir(parents=True, exist_ok=True)
    params = {"utility": asdict(settings), "dataset": dataset.name,
              "synthetic": {k: str(sets[k]) for k in sorted(needed)}}  # fmt: skip
    runs: list[dict[str, Any]] = []
    with stage_run("utility", recipe.name, params, output=work):
        import mlflow

        for name in settings.arms:
            arm = ARMS[name]
            pool = pools.get(arm.synthetic) if arm.synthetic else None
            images = real.images if pool is None else torch.cat([real.images, pool.images])
            labels = real.labels if pool is None else torch.cat([real.labels, pool.labels])
            for seed in settings.seeds:
                classifier = replace(settings.classifier, seed=seed, balanced=arm.balanced)
                key = _fingerprint(classifier, arm, seed, settings, real, pool, verified.manifest_sha256)
                runs.append(_run_one(work, key, arm, seed, classifier, images, labels, len(real.images), classes,
                                     test_images, test_labels, rare, _augment(arm, domain)))  # fmt: skip
        arms = {name: {"description": ARMS[name].description, **summarise([r for r in runs if r["arm"] == name], classes)}
                for name in settings.arms}  # fmt: skip
        metrics = {"arms": arms, "rare_classes": rare, "train_counts": train_counts, "test_counts": _counts(test_labels, classes),
                   "seeds": list(settings.seeds), "steps": settings.classifier.steps, "batch_size": settings.classifier.batch_size,
                   "leak_check": leak, "goal": goal(arms), "runs": runs}  # fmt: skip
        # tracking takes the figures before the report and the metrics file are published
        for name, figures in arms.items():
            log_metrics({f"{name}.{m}": figures[m]["mean"] for m in HEADLINE})
        log_metrics({f"{r['arm']}.seed{r['seed']}.seconds": r["log"]["seconds"] for r in runs})
        set_tags({"test_pixels_sha256": leak["test_pixels_sha256"]})
        paths = build_folder(report, lambda folder: _report(folder, recipe, metrics, classes)) if report else []
        if metrics_path is not None:
            # wall-clock seconds stay out of the metrics file (MLflow and the report have them):
            # the same inputs and seeds then give the same file, byte for byte
            untimed = {**metrics, "runs": [{**r, "log": {k: v for k, v in r["log"].items() if k != "seconds"}} for r in runs]}
            paths.append(write_text(metrics_path, json.dumps(untimed, indent=2) + "\n"))
        for path in paths:
            mlflow.log_artifact(str(path), artifact_path="utility")
    return UtilityResult(arms, runs, metrics, paths, time.monotonic() - started)


def _counts(labels: torch.Tensor, classes: list[str]) -> dict[str, int]:
    return {name: int((labels == i).sum()) for i, name in enumerate(classes)}


def _fingerprint(classifier: ClassifierSettings, arm: Arm, seed: int, settings: UtilitySettings, real: Pool, pool: Pool | None, test: str) -> str:
    spec = {"classifier": asdict(classifier), "arm": asdict(arm), "seed": seed, "real": real.manifest_sha256,
            "synthetic": pool.manifest_sha256 if pool else None, "test": test,
            "augmentation": [asdict(s) for s in settings.augmentation] if arm.augmented else None, "size": SIZE}  # fmt: skip
    return sha256_bytes(json.dumps(spec, sort_keys=True, default=str).encode())[:16]


def _run_one(work: Path, key: str, arm: Arm, seed: int, classifier: ClassifierSettings, images: torch.Tensor, labels: torch.Tensor,
             real_count: int, classes: list[str], test_images: torch.Tensor, test_labels: torch.Tensor, rare: list[str], augment) -> dict[str, Any]:  # fmt: skip
    record_path = work / f"{arm.name}-seed{seed}-{key}.json"
    if record_path.is_file():
        return json.loads(record_path.read_text())
    model, log = train_classifier(images, labels, len(classes), classifier, augment=augment, description=f"{arm.name} seed {seed}")
    probabilities, _ = run_model(model, test_images)
    record = {"arm": arm.name, "seed": seed, "fingerprint": key, **score(probabilities.argmax(1), test_labels, classes, rare),
              "log": {"steps": log.steps, "batch_size": classifier.batch_size, "images_seen": log.images_seen,
                      "train_images": len(images), "real_images": real_count, "synthetic_images": len(images) - real_count,
                      "balanced": classifier.balanced, "augmented": arm.augmented, "seconds": log.seconds, "losses": log.losses}}  # fmt: skip
    write_text(record_path, json.dumps(record) + "\n")
    return record


def goal(arms: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The best synthetic arm against the best classical arm, per headline metric.

    Not evaluated when a metric could not be computed (the reason says which and why); with one
    seed there are no intervals, so whether they separate is unknown (None) and the goal not met.
    """
    classical = [a for a in arms if a in CLASSICAL]
    synthetic = [a for a in arms if a not in CLASSICAL]
    if not classical or not synthetic:
        return {"evaluated": False, "reason": "needs at least one classical and one synthetic arm"}
    for metric in GOAL:
        missing = [arms[a][metric]["reason"] for a in arms if arms[a][metric]["mean"] is None]
        if missing:
            return {"evaluated": False, "reason": f"{metric.replace('_', ' ')} {missing[0]}"}
    out: dict[str, Any] = {"evaluated": True, "met": True}
    for metric, margin in GOAL.items():
        best_c = max(classical, key=lambda a: arms[a][metric]["mean"])
        best_s = max(synthetic, key=lambda a: arms[a][metric]["mean"])
        low, high = arms[best_s][metric]["ci95"], arms[best_c][metric]["ci95"]
        gain = arms[best_s][metric]["mean"] - arms[best_c][metric]["mean"]
        separate = None if low is None or high is None else low[0] > high[1]
        met = gain >= margin and separate is True
        out[metric] = {"best_classical": best_c, "best_synthetic": best_s, "gain": gain, "wanted": margin,
                       "intervals_separate": separate, "met": met}  # fmt: skip
        if separate is None:
            out[metric]["reason"] = arms[best_s][metric].get("reason") or arms[best_c][metric].get("reason")
        out["met"] = out["met"] and met
    return out


def headline_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """Arm, balanced accuracy, rare-third recall and macro-F1, each mean [95% interval] or what
    stands in for a figure that could not be computed, and why."""
    return [[name, *(figure_text(fig[m]) for m in ("balanced_accuracy", "rare_third_recall", "macro_f1"))]
            for name, fig in metrics["arms"].items()]  # fmt: skip


def _report(folder: Path, recipe: Recipe, metrics: dict[str, Any], classes: list[str]) -> list[Path]:
    from synthdata.reporting.html import HtmlReport
    from synthdata.reporting.plots import arm_intervals, recall_heatmap

    folder.mkdir(parents=True, exist_ok=True)
    arms = metrics["arms"]
    order = sorted(classes, key=lambda c: metrics["train_counts"][c])
    bars = arm_intervals(arms, ["balanced_accuracy", "rare_third_recall"], folder / "arms.png",
                         title=f"{recipe.name}: test split, {len(metrics['seeds'])} seeds, {metrics['steps']} steps each")  # fmt: skip
    heat = recall_heatmap({a: [f["recall"][c]["mean"] for c in order] for a, f in arms.items()}, order,
                          [metrics["train_counts"][c] for c in order], folder / "recall.png", title=f"{recipe.name}: test recall per class")  # fmt: skip
    page = HtmlReport(f"{recipe.name}: downstream utility")
    page.text(f"Each arm trains the same small ResNet ({metrics['steps']} optimizer steps, batch {metrics['batch_size']}, "
              f"seeds {metrics['seeds']}) and is scored on the real test split ({metrics['leak_check']['test_images']} images, "
              "none of which share pixels with any training image). Intervals: 95% Student-t over seeds. "
              f"Rare classes (fewest training images): {', '.join(metrics['rare_classes'])}.")  # fmt: skip
    page.heading("Headline")
    page.table(["arm", "what it trains on", *HEADLINE],
               [[a, f["description"], *[figure_text(f[m]) for m in HEADLINE]] for a, f in arms.items()])  # fmt: skip
    page.image(bars, "balanced accuracy and mean recall of the rarest third of classes, mean and 95% interval")
    g = metrics["goal"]
    page.heading("Does synthetic data help?")
    if not g.get("evaluated"):
        page.text(f"Not evaluated: {g['reason']}.")
    else:
        page.table(["metric", "best classical", "best synthetic", "gain", "wanted", "intervals separate", "met"],
                   [_goal_row(m, g[m]) for m in GOAL], row_classes=["pass" if g[m]["met"] else "fail" for m in GOAL])
    page.heading("Per-class recall")
    page.image(heat, "mean test recall per class and arm, classes from fewest to most training images")
    page.table(["class", "train images", "test images", *arms],
               [[c, metrics["train_counts"][c], metrics["test_counts"][c], *[_recall_text(arms[a]["recall"][c]) for a in arms]] for c in order])  # fmt: skip
    page.heading("Equal budget")
    page.table(["arm", "seed", "steps", "batch", "images seen", "train images (synthetic)", "seconds"],
               [[r["arm"], r["seed"], r["log"]["steps"], r["log"]["batch_size"], r["log"]["images_seen"],
                 f"{r['log']['train_images']} ({r['log']['synthetic_images']})", f"{r['log']['seconds']:.0f}"] for r in metrics["runs"]])  # fmt: skip
    return [bars, heat, page.write(folder / "report.html")]


def _recall_text(figure: dict[str, Any]) -> str:
    return figure["reason"] if figure["mean"] is None else f"{figure['mean']:.3f}"


def _goal_row(metric: str, verdict: dict[str, Any]) -> list[Any]:
    separate = verdict["reason"] if verdict["intervals_separate"] is None else verdict["intervals_separate"]
    return [metric, verdict["best_classical"], verdict["best_synthetic"], f"{verdict['gain']:+.3f}",
            f"+{verdict['wanted']:.2f}", separate, verdict["met"]]  # fmt: skip
