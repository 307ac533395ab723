"""The figures of a utility comparison, as ``metrics/<recipe>/utility.json`` holds them: each
arm's figures over seeds, the class counts, the budget, the leak check, every run, the goal and
the verdict."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from synthdata.downstream.arms import DOUBLED, arm_of
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


def _description(name: str) -> str:
    arm = arm_of(name)
    return arm.description + (", at twice the budget" if name.endswith(DOUBLED) else "")
