"""What a downstream model scores on the real test split, and intervals across seeds.

Per run (torchmetrics): accuracy, balanced accuracy (mean per-class recall), macro-F1, per-class
recall, and the mean recall over the rarest third of classes — rarest by the *training* counts
of the long-tailed split, the classes synthetic data is meant to help. Across seeds: the mean
and a 95% Student-t interval (with 3 seeds it is wide, as it should be). A figure that cannot be
computed is None with the reason beside it, never a number that looks like one: a class without
test images has no recall, and one seed has no interval.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score, multiclass_recall

HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1", "rare_third_recall")
NO_TEST_IMAGES = "n/a (no test images)"
"""Why a class has no recall (and a mean over such classes alone has no value)."""
ONE_SEED = "n/a (1 seed)"
"""Why a figure over one seed has no interval."""


def class_counts(labels: torch.Tensor, classes: list[str]) -> dict[str, int]:
    """Images per class name of integer ``labels``."""
    return {name: int((labels == i).sum()) for i, name in enumerate(classes)}


def rare_classes(train_counts: dict[str, int], fraction: float = 1 / 3) -> list[str]:
    """The ``ceil(fraction * C)`` classes with the fewest training images (ties: earlier class)."""
    names = list(train_counts)
    ranked = sorted(range(len(names)), key=lambda i: (train_counts[names[i]], i))
    return [names[i] for i in sorted(ranked[: max(1, math.ceil(fraction * len(names)))])]


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def score(predictions: torch.Tensor, labels: torch.Tensor, classes: list[str], rare: list[str]) -> dict[str, object]:
    """Figures of one model's test predictions (class indices).

    A class with no test image has no recall (None, not 0.0): it is left out of balanced accuracy
    and of the rare-third mean, and ``reasons`` says why each missing figure is missing.
    """
    n = len(classes)
    recall = multiclass_recall(predictions, labels, num_classes=n, average="none")
    tested = {name for i, name in enumerate(classes) if bool((labels == i).any())}
    per_class = {name: float(recall[i]) if name in tested else None for i, name in enumerate(classes)}
    figures: dict[str, object] = {
        "accuracy": float(multiclass_accuracy(predictions, labels, num_classes=n, average="micro")),
        "balanced_accuracy": _mean([per_class[name] for name in classes if name in tested]),
        "macro_f1": float(multiclass_f1_score(predictions, labels, num_classes=n, average="macro")),
        "rare_third_recall": _mean([per_class[name] for name in rare if name in tested]),
        "recall": per_class,
    }
    reasons: dict[str, object] = {
        m: NO_TEST_IMAGES for m in ("balanced_accuracy", "rare_third_recall") if figures[m] is None
    }
    if tested != set(classes):
        reasons["recall"] = {name: NO_TEST_IMAGES for name in classes if name not in tested}
    figures["reasons"] = reasons
    return figures


def interval(values: list[float | None], reason: str = NO_TEST_IMAGES) -> dict[str, object]:
    """Mean and 95% Student-t interval over seeds, clipped to [0, 1]. A figure some seed could not
    compute has neither (None, with ``reason``); one seed has a mean but no interval."""
    if not values or any(v is None for v in values):
        return {"mean": None, "ci95": None, "n": len(values), "reason": reason}
    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    if len(array) < 2:
        return {"mean": mean, "ci95": None, "n": 1, "reason": ONE_SEED}
    half = float(stats.t.ppf(0.975, len(array) - 1) * array.std(ddof=1) / math.sqrt(len(array)))
    # every figure here is a rate in [0, 1]; the interval is clipped to it
    return {
        "mean": mean,
        "ci95": [max(mean - half, 0.0), min(mean + half, 1.0)],
        "n": len(array),
        "values": array.tolist(),
    }


def summarise(runs: list[dict[str, object]], classes: list[str]) -> dict[str, object]:
    """One arm's figures over its seeds: each headline metric and each class's recall."""
    out: dict[str, object] = {name: interval([r[name] for r in runs]) for name in HEADLINE}
    out["recall"] = {c: interval([r["recall"][c] for r in runs]) for c in classes}
    return out


def figure_text(figure: dict[str, object]) -> str:
    """``mean [low, high]``, or what stands in for a missing part and why: the one way every
    table (printed, HTML, Markdown) shows a figure."""
    if figure["mean"] is None:
        return str(figure.get("reason", "n/a"))
    if figure["ci95"] is None:
        return f"{figure['mean']:.3f} [{figure.get('reason', 'n/a')}]"
    low, high = figure["ci95"]
    return f"{figure['mean']:.3f} [{low:.3f}, {high:.3f}]"
