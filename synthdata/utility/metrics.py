"""What a downstream model scores on the real test split, and intervals across seeds.

Per run (torchmetrics): accuracy, balanced accuracy (mean per-class recall), macro-F1, per-class
recall, and the mean recall over the rarest third of classes — rarest by the *training* counts
of the long-tailed split, the classes synthetic data is meant to help. Across seeds: the mean
and a 95% Student-t interval (with 3 seeds it is wide, as it should be).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score, multiclass_recall

HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1", "rare_third_recall")


def rare_classes(train_counts: dict[str, int], fraction: float = 1 / 3) -> list[str]:
    """The ``ceil(fraction * C)`` classes with the fewest training images (ties: earlier class)."""
    names = list(train_counts)
    ranked = sorted(range(len(names)), key=lambda i: (train_counts[names[i]], i))
    return [names[i] for i in sorted(ranked[: max(1, math.ceil(fraction * len(names)))])]


def score(predictions: torch.Tensor, labels: torch.Tensor, classes: list[str], rare: list[str]) -> dict[str, object]:
    """Figures of one model's test predictions (class indices)."""
    n = len(classes)
    recall = multiclass_recall(predictions, labels, num_classes=n, average="none")
    per_class = {name: float(recall[i]) for i, name in enumerate(classes)}
    return {
        "accuracy": float(multiclass_accuracy(predictions, labels, num_classes=n, average="micro")),
        "balanced_accuracy": float(multiclass_accuracy(predictions, labels, num_classes=n, average="macro")),
        "macro_f1": float(multiclass_f1_score(predictions, labels, num_classes=n, average="macro")),
        "rare_third_recall": float(np.mean([per_class[name] for name in rare])),
        "recall": per_class,
    }


def interval(values: list[float]) -> dict[str, object]:
    """Mean and 95% Student-t interval over seeds, clipped to [0, 1] (a single seed has a
    zero-width interval)."""
    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    if len(array) < 2:
        return {"mean": mean, "ci95": [mean, mean], "n": len(array)}
    half = float(stats.t.ppf(0.975, len(array) - 1) * array.std(ddof=1) / math.sqrt(len(array)))
    # every figure here is a rate in [0, 1]; the interval is clipped to it
    return {"mean": mean, "ci95": [max(mean - half, 0.0), min(mean + half, 1.0)], "n": len(array), "values": array.tolist()}


def summarise(runs: list[dict[str, object]], classes: list[str]) -> dict[str, object]:
    """One arm's figures over its seeds: each headline metric and each class's recall."""
    out: dict[str, object] = {name: interval([float(r[name]) for r in runs]) for name in HEADLINE}
    out["recall"] = {c: interval([float(r["recall"][c]) for r in runs]) for c in classes}
    return out
