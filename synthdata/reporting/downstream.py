"""The utility report: each arm's figures on the real test split, the budget that every arm
trained for, whether synthetic data met the goal, and per-class recall, as one self-contained
HTML page with its three plots (arm intervals, per-class recall, validation curves)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthdata.downstream.arms import DOUBLED
from synthdata.downstream.metrics import HEADLINE, figure_text
from synthdata.downstream.verdict import GOAL
from synthdata.reporting.html import HtmlReport
from synthdata.reporting.plots import arm_intervals, recall_heatmap, training_curves


def utility_report(folder: Path, recipe: str, metrics: dict[str, Any], classes: list[str]) -> list[Path]:
    """Write ``report.html`` and its plots into ``folder`` from the utility metrics; return
    the plots' paths and the page's, the page last."""
    folder.mkdir(parents=True, exist_ok=True)
    arms = metrics["arms"]
    order = sorted(classes, key=lambda c: metrics["train_counts"][c])
    bars, heat, curves = _plots(folder, recipe, metrics, order)
    page = HtmlReport(f"{recipe}: downstream utility")
    page.text(
        f"Each arm trains the same network ({metrics['model']} at {metrics['image_size']} px; {metrics['steps']} optimizer steps, "
        f"batch {metrics['batch_size']}, seeds {metrics['seeds']}) and is scored on the real test split "
        f"({metrics['leak_check']['test_images']} images, none of which share pixels with any training or validation image). "
        f"Intervals: 95% Student-t over seeds. Rare classes (fewest training images): {', '.join(metrics['rare_classes'])}."
    )
    _budget(page, metrics)
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
    _goal(page, metrics["goal"])
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
    _equal_budget(page, metrics["runs"])
    return [bars, heat, curves, page.write(folder / "report.html")]


def _plots(folder: Path, recipe: str, metrics: dict[str, Any], order: list[str]) -> tuple[Path, Path, Path]:
    """The arms' intervals, the per-class recall heatmap (classes in ``order``) and the curves."""
    arms = metrics["arms"]
    bars = arm_intervals(
        arms,
        ["balanced_accuracy", "rare_third_recall"],
        folder / "arms.png",
        title=f"{recipe}: test split, {len(metrics['seeds'])} seeds, {metrics['steps']} steps each",
    )
    heat = recall_heatmap(
        {a: [f["recall"][c]["mean"] for c in order] for a, f in arms.items()},
        order,
        [metrics["train_counts"][c] for c in order],
        folder / "recall.png",
        title=f"{recipe}: test recall per class",
    )
    curves = training_curves(
        {a: [r["val"]["curve"] for r in metrics["runs"] if r["arm"] == a] for a in arms},
        folder / "curves.png",
        title=f"{recipe}: validation split during training, every arm and seed",
        budget=metrics["steps"],
    )
    return bars, heat, curves


def _budget(page: HtmlReport, metrics: dict[str, Any]) -> None:
    """The budget rule, its ladder's rungs when it climbed one, and the doubled arm if any."""
    budget = metrics["budget"]
    page.heading("Budget")
    page.text("Rule: " + budget["text"])
    if budget.get("rungs"):
        page.table(
            [
                "steps",
                "epochs of real train",
                f"{budget['reference_arm']} validation balanced accuracy",
                "standard error",
            ],
            [
                [
                    f"{r['steps']:.0f}",
                    f"{r['epochs']:.1f}",
                    f"{r['val_balanced_accuracy']:.3f}",
                    f"{r['standard_error']:.3f}",
                ]
                for r in budget["rungs"]
            ],
        )
    if budget.get("doubled"):
        page.text(
            f"{budget['doubled']}, the best classical arm on the validation split, also trained at twice the budget "
            f"({2 * metrics['steps']} steps) as {budget['doubled']}{DOUBLED}."
        )


def _goal(page: HtmlReport, goal: dict[str, Any]) -> None:
    page.heading("Does synthetic data help?")
    if not goal.get("evaluated"):
        page.text(f"Not evaluated: {goal['reason']}.")
    else:
        page.table(
            ["metric", "best classical", "best synthetic", "gain", "wanted", "intervals separate", "met"],
            [_goal_row(m, goal[m]) for m in GOAL],
            row_classes=["pass" if goal[m]["met"] else "fail" for m in GOAL],
        )


def _equal_budget(page: HtmlReport, runs: list[dict[str, Any]]) -> None:
    """One row per run: what it trained on and for how long, so equal budgets can be seen."""
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
            for r in runs
        ],
    )


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
