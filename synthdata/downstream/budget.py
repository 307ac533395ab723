"""The downstream budget: how many optimizer steps every arm gets, chosen by a rule, not by hand.

A gain measured before the real-only arms have converged says how fast a model learns, not
what the data is worth: given more steps, the real arms often catch up. So the budget is where
the real arms stop improving, and the best real arm is also trained at twice that budget.

Rules (``utility.budget.rule``):

- ``plateau`` (default): train the reference arm (``real-oversampled``, first seed) at ``epochs``
  epochs of the real train split, then double the steps while the doubling raises its balanced
  accuracy on the *validation* split by at least ``tolerance`` and by more than the standard
  error of that figure (a long-tailed validation split may hold one image of a rare class, and a
  gain it cannot resolve is not a gain); the budget is the last rung before a doubling that did
  not pay. The test split is never read. A ladder that reaches ``max_epochs`` still improving
  ends there, and the report says it did not converge.
- ``epochs``: ``ceil(epochs * real train images / batch size)`` steps.
- ``steps``: ``utility.classifier.steps`` as given (a hand-picked budget; the report says so).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from synthdata.settings import check_numbers

Rule = Literal["plateau", "epochs", "steps"]


@dataclass(frozen=True)
class BudgetSettings:
    """How the steps every arm trains for are chosen; numbers in epochs of the real train split."""

    rule: Rule = "plateau"
    epochs: float = field(default=10.0, metadata={"range": "(0, 100_000]"})
    """``epochs``: the budget; ``plateau``: the first rung of the ladder."""
    max_epochs: float = field(default=160.0, metadata={"range": "(0, 100_000]"})
    """``plateau``: the largest rung (a ladder still improving there stops and says so)."""
    tolerance: float = field(default=0.01, metadata={"range": "[0, 1]"})
    """``plateau``: a doubling that raises validation balanced accuracy by less than this (or than
    the figure's standard error, whichever is larger) has converged."""
    reference_arm: str = "real-oversampled"
    """``plateau``: the arm whose validation curve decides (a classical arm)."""
    double: bool = True
    """Also train the best classical arm (by validation balanced accuracy, never test) at 2x the budget."""
    curve_points: int = field(default=10, metadata={"range": "[0, 10_000]"})
    """Validation-split evaluations per run, for the training curves (0: only the end)."""

    def __post_init__(self) -> None:
        check_numbers(self)
        if self.max_epochs < self.epochs:
            raise ValueError("utility.budget.max_epochs must be at least utility.budget.epochs")


def epochs_to_steps(epochs: float, train_images: int, batch_size: int) -> int:
    """Optimizer steps that show ``epochs`` x ``train_images`` images in batches of ``batch_size``."""
    return max(1, math.ceil(epochs * train_images / batch_size))


@dataclass
class BudgetOutcome:
    """What the rule chose and why: the steps, and for ``plateau`` every rung's validation figure."""

    rule: Rule
    steps: int
    epochs: float
    converged: bool | None
    """``plateau``: whether a doubling stopped paying; None for the other rules."""
    rungs: list[dict[str, float]] = field(default_factory=list)
    reference_arm: str | None = None

    def describe(self) -> str:
        """The rule and its outcome in one sentence, for the report."""
        if self.rule == "steps":
            return f"{self.steps} steps, set by hand (utility.classifier.steps); convergence not checked."
        if self.rule == "epochs":
            return f"{self.steps} steps = {self.epochs:g} epochs of the real train split (utility.budget.epochs); convergence not checked."
        ladder = ", ".join(
            f"{r['steps']:.0f} steps: {r['val_balanced_accuracy']:.3f} (s.e. {r['standard_error']:.3f})"
            for r in self.rungs
        )
        verdict = (
            "converged: the next doubling gained less than the tolerance or the standard error"
            if self.converged
            else "NOT converged: still improving at utility.budget.max_epochs, the largest rung"
        )
        return (
            f"{self.steps} steps ({self.epochs:.3g} epochs of the real train split), chosen on the validation split by "
            f"doubling {self.reference_arm}'s steps while its balanced accuracy rose by more than the tolerance and its "
            f"standard error ({ladder}); {verdict}."
        )


def balanced_accuracy_error(recall: dict[str, float | None], counts: dict[str, int]) -> float:
    """Standard error of a balanced accuracy from per-class recalls and image counts: the mean of
    C binomial proportions, each smoothed as (k + 1) / (n + 2) so that a class with one image
    right still counts as uncertain (Agresti-Coull style)."""
    variances = []
    for name, value in recall.items():
        n = counts.get(name, 0)
        if value is None or n == 0:
            continue
        p = (value * n + 1) / (n + 2)
        variances.append(p * (1 - p) / n)
    return math.sqrt(sum(variances)) / len(variances) if variances else 0.0


def choose_budget(
    settings: BudgetSettings,
    hand_steps: int,
    train_images: int,
    batch_size: int,
    val_score: Callable[[int], tuple[float, float]],
) -> BudgetOutcome:
    """Apply the rule; ``val_score(steps)`` trains the reference arm for ``steps`` and returns its
    validation balanced accuracy and that figure's standard error (called only by ``plateau``,
    once per rung)."""
    per_epoch = train_images / batch_size
    if settings.rule == "steps":
        return BudgetOutcome("steps", hand_steps, hand_steps / per_epoch, None)
    steps = epochs_to_steps(settings.epochs, train_images, batch_size)
    if settings.rule == "epochs":
        return BudgetOutcome("epochs", steps, settings.epochs, None)
    # each rung doubles the steps exactly (so twice the budget is the next rung's run); the
    # ladder may double while it stays within max_epochs
    doublings = math.floor(math.log2(settings.max_epochs / settings.epochs) + 1e-9)
    rungs: list[dict[str, float]] = []
    while True:
        value, error = val_score(steps)
        rungs.append(
            {"steps": steps, "epochs": steps / per_epoch, "val_balanced_accuracy": value, "standard_error": error}
        )
        if len(rungs) >= 2 and rungs[-1]["val_balanced_accuracy"] - rungs[-2]["val_balanced_accuracy"] < max(
            settings.tolerance, error
        ):
            chosen, converged = int(rungs[-2]["steps"]), True
            break
        if len(rungs) > doublings:
            chosen, converged = steps, False
            break
        steps *= 2
    return BudgetOutcome("plateau", chosen, chosen / per_epoch, converged, rungs, settings.reference_arm)
