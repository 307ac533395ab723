"""How synthetic images should enter training: synthetic share of each batch x loss weight.

Trains ``real+synth-oversampled-augmented`` (synthetic on top of the best cheap trick) for every
(share, weight) setting, beside its baseline ``real-oversampled-augmented``, with the same
steps, batch and seeds, on the recipe's long-tailed train split and validated synthetic set,
and scores each on the real test split. The steps are the pipeline's budget
(``metrics/<recipe>/utility-figures.json``) unless ``--epochs`` is given. Finished runs are shared with
the pipeline's work folder, so the baseline is the pipeline's own runs.

    python benchmarks/utility_mixing.py --recipe pbc --shares pooled,0.1,0.25,0.5 --weights 1,0.5
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from common import machine, real_pools, split_pool, write_result

from synthdata.config.recipe import load_recipe
from synthdata.data.card import read_card
from synthdata.data.manifest import verify_dataset
from synthdata.downstream.augment import Augmentation
from synthdata.downstream.batches import SyntheticMixing
from synthdata.downstream.budget import epochs_to_steps
from synthdata.downstream.metrics import class_counts, figure_text, interval, rare_classes
from synthdata.downstream.runner import ArmRunner

BASELINE, ARM = "real-oversampled-augmented", "real+synth-oversampled-augmented"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="pbc")
    parser.add_argument("--shares", default="pooled,0.1,0.25,0.5")
    parser.add_argument("--weights", default="1,0.5")
    parser.add_argument(
        "--epochs", type=float, default=None, help="budget in epochs of the real train split (default: the pipeline's)"
    )
    args = parser.parse_args()
    recipe = load_recipe(Path("recipes") / f"{args.recipe}.yaml")
    dataset, synthetic = Path("datasets") / f"{recipe.name}-lt", Path("validated") / recipe.name
    if not recipe.longtail.enabled:
        dataset = Path("datasets") / recipe.name
    settings = recipe.utility
    size = settings.image_size or read_card(dataset).width
    card, real, val, test = real_pools(dataset, size)
    classes = list(card.classes)
    fake = split_pool(synthetic, "train", size, card.channels, verify_dataset(synthetic).manifest_sha256)
    if args.epochs is not None:
        steps = epochs_to_steps(args.epochs, len(real.images), settings.classifier.batch_size)
    else:
        steps = json.loads((Path("metrics") / recipe.name / "utility-figures.json").read_text())["steps"]
    rare = rare_classes(class_counts(real.labels, classes), settings.rare_fraction)
    work = Path("models") / recipe.name / "utility.work"
    work.mkdir(parents=True, exist_ok=True)
    shares = [None if s == "pooled" else float(s) for s in args.shares.split(",")]
    weights = [float(w) for w in args.weights.split(",")]
    rows, started = [], time.perf_counter()
    settings_for = lambda mixing: replace(settings, synthetic=mixing)  # noqa: E731
    domain = Augmentation(settings.augmentation)
    baseline = ArmRunner(settings, classes, real, val, test, {"adapted": fake}, rare, work, size, domain)
    runs = [baseline.run(BASELINE, seed, steps) for seed in settings.seeds]
    rows.append({"arm": BASELINE, "share": None, "loss_weight": None, **_figures(runs)})
    for share in shares:
        for weight in weights:
            runner = ArmRunner(
                settings_for(SyntheticMixing(share, weight)),
                classes,
                real,
                val,
                test,
                {"adapted": fake},
                rare,
                work,
                size,
                domain,
            )
            runs = [runner.run(ARM, seed, steps) for seed in settings.seeds]
            rows.append({"arm": ARM, "share": share, "loss_weight": weight, **_figures(runs)})
    result = {
        "recipe": recipe.name,
        "steps": steps,
        "batch_size": settings.classifier.batch_size,
        "seeds": list(settings.seeds),
        "synthetic_images": len(fake.images),
        "real_images": len(real.images),
        "rows": rows,
        "machine": machine(),
        "seconds": time.perf_counter() - started,
    }
    lines = [
        f"{recipe.name}: {ARM} by synthetic share of each batch and loss weight, beside {BASELINE}; "
        f"{steps} steps x {settings.classifier.batch_size}, seeds {list(settings.seeds)}, {len(fake.images)} synthetic and "
        f"{len(real.images)} real train images; real test split, mean [95% interval].",
        "",
        "| arm | synthetic share | loss weight | balanced accuracy | rare-third recall | validation balanced accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        share = (
            "pooled"
            if row["share"] is None and row["arm"] == ARM
            else ("" if row["share"] is None else f"{row['share']:g}")
        )
        lines.append(
            f"| {row['arm']} | {share} | {'' if row['loss_weight'] is None else row['loss_weight']} | "
            f"{figure_text(row['balanced_accuracy'])} | {figure_text(row['rare_third_recall'])} | {figure_text(row['val_balanced_accuracy'])} |"
        )
    path = write_result(f"utility_mixing_{recipe.name}", result, "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {path}")


def _figures(runs: list[dict]) -> dict:
    return {
        "balanced_accuracy": interval([r["balanced_accuracy"] for r in runs]),
        "rare_third_recall": interval([r["rare_third_recall"] for r in runs]),
        "val_balanced_accuracy": interval([r["val"]["balanced_accuracy"] for r in runs]),
    }


if __name__ == "__main__":
    main()
