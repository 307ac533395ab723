"""The classical arms at the old hand-picked budget and at the budget the rule picks, per domain.

For each recipe: every classical arm of its utility section, trained with the same seeds, first
for the old CPU preset (400 steps x 64, set by hand), then for the steps ``utility.budget``
chooses (the validation plateau of ``real-oversampled``), plus the best classical arm at twice
those. Every model is scored on the real test split. The table says which classical arm is the
one a synthetic set now has to beat. Needs each recipe's dataset folder (``datasets/<name>-lt``,
or ``datasets/<name>`` when the recipe keeps the natural imbalance) under ``--root``.

    python benchmarks/utility_budget.py --recipes pbc,eurosat,gtsrb,pneumoniamnist,breastmnist --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from common import machine, write_result

from synthdata.config.recipe import load_recipe
from synthdata.data.manifest import verify_dataset
from synthdata.data.tensors import load_split
from synthdata.downstream.arms import ARMS
from synthdata.downstream.augment import Augmentation
from synthdata.downstream.metrics import class_counts, figure_text, interval, rare_classes
from synthdata.downstream.runner import ArmRunner, Pool, run_arms

OLD_STEPS = 400
"""The CPU preset's hand-picked budget before the rule: 400 steps x batch 64."""


def measure(
    name: str,
    root: Path,
    seeds: list[int],
    log,
    *,
    arms: list[str] | None = None,
    old_budget: bool = True,
    max_epochs: float | None = None,
    double: bool = True,
) -> dict:
    recipe = load_recipe(Path("recipes") / f"{name}.yaml")
    dataset = root / "datasets" / (f"{name}-lt" if recipe.longtail.enabled else name)
    verified = verify_dataset(dataset)
    card, settings = verified.card, recipe.utility
    size = settings.image_size or card.width
    classes = list(card.classes)

    def pool(split: str) -> Pool:
        images, labels, _ = load_split(dataset, split, size=size, channels=card.channels)
        return Pool(images, labels, verified.manifest_sha256)

    real, val, test = pool("train"), pool("val"), pool("test")
    rare = rare_classes(class_counts(real.labels, classes), settings.rare_fraction)
    classical = arms or [a for a in settings.arms if ARMS[a].synthetic is None]
    work = root / "models" / name / "utility.work"
    work.mkdir(parents=True, exist_ok=True)
    domain = Augmentation(settings.augmentation) if settings.augmentation else None
    started = time.perf_counter()
    old = replace(
        settings,
        arms=classical,
        seeds=seeds,
        classifier=replace(settings.classifier, steps=OLD_STEPS, batch_size=64),
        budget=replace(settings.budget, rule="steps", double=False),
    )
    old_runs = (
        run_arms(ArmRunner(old, classes, real, val, test, {}, rare, work, size, domain)).runs if old_budget else []
    )
    old_seconds = time.perf_counter() - started
    log(f"{name}: old budget done in {old_seconds:.0f} s")
    budget = replace(
        settings.budget, double=double and settings.budget.double, max_epochs=max_epochs or settings.budget.max_epochs
    )
    new = replace(settings, arms=classical, seeds=seeds, budget=budget)
    outcome = run_arms(ArmRunner(new, classes, real, val, test, {}, rare, work, size, domain))
    names = list(dict.fromkeys(r["arm"] for r in outcome.runs))
    figures = {
        "old": {a: _figures([r for r in old_runs if r["arm"] == a]) for a in classical} if old_budget else {},
        "new": {a: _figures([r for r in outcome.runs if r["arm"] == a]) for a in names},
    }
    best = max(names, key=lambda a: figures["new"][a]["balanced_accuracy"]["mean"])
    return {
        "recipe": name,
        "train_images": len(real.images),
        "seeds": seeds,
        "old_steps": OLD_STEPS,
        "new_steps": outcome.budget.steps,
        "budget": {
            "text": outcome.budget.describe(),
            "rungs": outcome.budget.rungs,
            "converged": outcome.budget.converged,
            "doubled": outcome.doubled,
        },
        "figures": figures,
        "best_classical": best,
        "seconds": {"old": old_seconds, "total": time.perf_counter() - started},
        "model": settings.model,
        "image_size": size,
    }


def _figures(runs: list[dict]) -> dict:
    return {m: interval([r[m] for r in runs]) for m in ("balanced_accuracy", "rare_third_recall")}


def render(results: list[dict]) -> str:
    lines = [
        "Classical arms at the old hand-picked budget (400 steps x 64) and at the budget the rule picks (validation plateau of "
        "real-oversampled; `@2x`: the best of them at twice it). Real test split, balanced accuracy / rare-third recall, "
        "mean [95% interval over seeds].",
        "",
    ]
    for r in results:
        lines += [
            f"### {r['recipe']}",
            "",
            f"{r['train_images']} real train images, {r['model']} at {r['image_size']} px, seeds {r['seeds']}; "
            f"{r['seconds']['total'] / 60:.0f} min. New budget: {r['budget']['text']}",
            "",
            f"| arm | old: {r['old_steps']} steps{'' if r['figures']['old'] else ' (not re-run here: see RESULTS.md)'} | new: {r['new_steps']} steps |",
            "|---|---|---|",
        ]
        for arm, new in r["figures"]["new"].items():
            old = r["figures"]["old"].get(arm)
            cell = lambda f: f"{figure_text(f['balanced_accuracy'])} / {figure_text(f['rare_third_recall'])}"  # noqa: E731
            lines.append(f"| {arm} | {cell(old) if old else '—'} | {cell(new)} |")
        lines += ["", f"The classical arm to beat: **{r['best_classical']}**.", ""]
        if r["budget"]["rungs"]:
            lines += ["| reference arm steps | validation balanced accuracy (s.e.) |", "|---|---|"]
            lines += [
                f"| {g['steps']} ({g['epochs']:.1f} epochs) | {g['val_balanced_accuracy']:.3f} ({g['standard_error']:.3f}) |"
                for g in r["budget"]["rungs"]
            ]
            lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="pbc,eurosat,gtsrb,pneumoniamnist,breastmnist")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--root", type=Path, default=Path("."), help="folder holding datasets/ (and models/ for finished runs)"
    )
    parser.add_argument("--name", default="utility_budget")
    parser.add_argument("--arms", default=None, help="classical arms to train (default: the recipe's)")
    parser.add_argument("--no-old", action="store_true", help="skip the old 400-step budget")
    parser.add_argument("--max-epochs", type=float, default=None, help="override utility.budget.max_epochs")
    parser.add_argument("--no-double", action="store_true", help="skip the best classical arm at twice the budget")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results = []
    for name in args.recipes.split(","):
        results.append(
            measure(
                name,
                args.root,
                seeds,
                print,
                arms=args.arms.split(",") if args.arms else None,
                old_budget=not args.no_old,
                max_epochs=args.max_epochs,
                double=not args.no_double,
            )
        )
        write_result(
            args.name, {"results": results, "machine": machine()}, render(results)
        )  # after each domain: a kill keeps what is done
    print(render(results))


if __name__ == "__main__":
    main()
