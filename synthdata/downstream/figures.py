"""The figures of a utility comparison, as ``metrics/<recipe>/utility-figures.json`` holds them:
each arm's figures over seeds, the class counts, the budget, the leak check, every run, the goal
and the verdict; the headline DVC compares (``metrics/<recipe>/utility.json``) and the data plots
drawn from them."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from synthdata.downstream.arms import DOUBLED, arm_of, is_classical
from synthdata.downstream.inputs import UtilityInputs
from synthdata.downstream.metrics import class_counts, summarise
from synthdata.downstream.runner import ArmsResult
from synthdata.downstream.settings import UtilitySettings
from synthdata.downstream.verdict import goal, verdict


def utility_figures(outcome: ArmsResult, inputs: UtilityInputs, settings: UtilitySettings) -> dict[str, Any]:
    """Every figure of the comparison: the arms in the order they ran, each with its description."""
    runs, classes = outcome.runs, inputs.classes
    names = list(dict.fromkeys(r["arm"] for r in runs))
    arms = {
        name: {"description": _description(name), **summarise([r for r in runs if r["arm"] == name], classes)}
        for name in names
    }
    metrics = {
        "arms": arms,
        "rare_classes": inputs.rare,
        "train_counts": inputs.train_counts,
        "test_counts": class_counts(inputs.test.labels, classes),
        "seeds": list(settings.seeds),
        "steps": outcome.budget.steps,
        "batch_size": settings.classifier.batch_size,
        "model": settings.model,
        "image_size": inputs.size,
        "budget": {**asdict(outcome.budget), "text": outcome.budget.describe(), "doubled": outcome.doubled},
        "leak_check": inputs.leak_check,
        "goal": goal(arms),
        "runs": runs,
    }
    metrics["verdict"] = verdict(metrics)
    return metrics


def metrics_file_text(metrics: dict[str, Any]) -> str:
    """The metrics file's text: ``metrics`` as indented JSON, without wall-clock seconds."""
    # wall-clock seconds stay out of the metrics file (MLflow and the report have them):
    # the same inputs and seeds then give the same file, byte for byte
    untimed = {
        **metrics,
        "runs": [{**r, "log": {k: v for k, v in r["log"].items() if k != "seconds"}} for r in metrics["runs"]],
    }
    return json.dumps(untimed, indent=2) + "\n"


HEADLINE_METRICS = {"balanced_accuracy": "ba", "rare_third_recall": "rare"}
"""The figures of the headline, each under its short key."""


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The numbers DVC compares: for balanced accuracy (``ba``) and rare-third recall (``rare``),
    the mean of the best classical arm (``real``), of the best synthetic arm (``synth``) and
    their difference (``gain``); whether the goal was met (None when not evaluated)."""
    arms, goal_ = metrics["arms"], metrics["goal"]
    out: dict[str, Any] = {}
    for metric, key in HEADLINE_METRICS.items():
        best = {
            side: max(
                (
                    arms[a][metric]["mean"]
                    for a in arms
                    if is_classical(a) == classical and arms[a][metric]["mean"] is not None
                ),
                default=None,
            )
            for side, classical in (("real", True), ("synth", False))
        }
        gain = None if None in best.values() else best["synth"] - best["real"]
        out[key] = {**best, "gain": gain}
    out["goal_met"] = goal_["met"] if goal_.get("evaluated") else None
    return out


def tables(metrics: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The data plots: each arm's headline means with their 95% intervals, each class's test
    recall per arm, and each arm's validation balanced accuracy during training (mean over seeds)."""
    arms = metrics["arms"]
    intervals = [
        {"arm": arm, "metric": metric, "mean": fig[metric]["mean"], **_bounds(fig[metric])}
        for metric in HEADLINE_METRICS
        for arm, fig in arms.items()
    ]
    recall = [
        {"class": name, "arm": arm, "recall": figure["mean"]}
        for arm, fig in arms.items()
        for name, figure in fig["recall"].items()
    ]
    points: dict[tuple[str, int], list[float]] = {}
    for run in metrics["runs"]:
        for step, value in run["val"]["curve"]:
            points.setdefault((run["arm"], int(step)), []).append(float(value))
    curves = [
        {"arm": arm, "step": step, "val_balanced_accuracy": sum(values) / len(values)}
        for (arm, step), values in points.items()
    ]
    return {"utility-arms.csv": intervals, "utility-recall.csv": recall, "utility-curves.csv": curves}


def _bounds(figure: dict[str, Any]) -> dict[str, float | None]:
    low, high = figure.get("ci95") or (None, None)
    return {"low": low, "high": high}


def _description(name: str) -> str:
    arm = arm_of(name)
    return arm.description + (", at twice the budget" if name.endswith(DOUBLED) else "")
