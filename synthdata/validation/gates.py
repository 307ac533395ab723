"""Gates: the recipe's thresholds checked against the validation figures.

A failed gate names the metric, the class (or ``overall``), the value and the threshold; the
stage writes its metrics and report first, then exits non-zero with every failure on one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synthdata.errors import SynthdataError
from synthdata.settings import check_numbers

if TYPE_CHECKING:
    from synthdata.validation.figures import ValidationFigures


@dataclass(frozen=True)
class GateSettings:
    """Thresholds a validated set must meet; a failure exits non-zero naming metric, class,
    value and threshold. None switches a gate off."""

    max_fd_ratio: float | None = field(default=None, metadata={"range": "[0, 1_000_000]"})
    """FD-domain of the accepted set over its real-vs-real floor, overall."""
    min_precision: float | None = field(default=None, metadata={"range": "[0, 1]"})
    """precision-domain, overall."""
    min_coverage: float | None = field(default=None, metadata={"range": "[0, 1]"})
    """coverage-domain, overall."""
    max_near_copy_fraction: float | None = field(default=0.05, metadata={"range": "[0, 1]"})
    """Near-copies among the generated images, per class (before filtering)."""
    min_fill: float | None = field(default=0.8, metadata={"range": "[0, 1]"})
    """Accepted images over the quota, per class."""
    min_diversity_ratio: float | None = field(default=0.5, metadata={"range": "[0, 100]"})
    """Intra-class diversity (domain features) of synthetic over real, per class."""

    def __post_init__(self) -> None:
        check_numbers(self)


class GateError(SynthdataError):
    """At least one validation gate failed."""


@dataclass(frozen=True)
class GateResult:
    gate: str
    metric: str
    scope: str
    """``overall`` or a class name."""
    value: float
    threshold: float
    passed: bool

    def describe(self) -> str:
        sign = "<=" if self.gate.startswith("max_") else ">="
        return f"{self.metric} for {self.scope} is {self.value:.4g}, gate {self.gate} needs {sign} {self.threshold:g}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "metric": self.metric,
            "scope": self.scope,
            "value": self.value,
            "threshold": self.threshold,
            "passed": self.passed,
        }


def _check(gate: str, metric: str, scope: str, value: float, threshold: float) -> GateResult:
    passed = value <= threshold if gate.startswith("max_") else value >= threshold
    return GateResult(gate, metric, scope, float(value), float(threshold), bool(passed))


def evaluate_gates(gates: GateSettings, figures: ValidationFigures) -> list[GateResult]:
    """Checks ``figures.overall`` realism (name -> {value, floor}) and, per class of
    ``figures.classes``, ``near_copy_fraction``, ``fill`` and ``diversity_ratio``. NaN figures (a
    class too small to measure) are skipped."""
    results = []
    overall = figures.overall
    if gates.max_fd_ratio is not None and "FD-domain" in overall:
        fd = overall["FD-domain"]
        ratio = fd["value"] / fd["floor"] if fd["floor"] > 0 else float("inf")
        results.append(_check("max_fd_ratio", "FD-domain / floor", "overall", ratio, gates.max_fd_ratio))
    for gate, metric in (("min_precision", "precision-domain"), ("min_coverage", "coverage-domain")):
        threshold = getattr(gates, gate)
        if threshold is not None and metric in overall:
            results.append(_check(gate, metric, "overall", overall[metric]["value"], threshold))
    per_class = figures.classes
    for gate, metric in (
        ("max_near_copy_fraction", "near_copy_fraction"),
        ("min_fill", "fill"),
        ("min_diversity_ratio", "diversity_ratio"),
    ):
        threshold = getattr(gates, gate)
        if threshold is None:
            continue
        for name, values in per_class.items():
            value = values.get(metric)
            if value is not None and value == value:  # NaN: not measurable for this class
                results.append(_check(gate, metric, name, value, threshold))
    return results


def enforce(results: list[GateResult]) -> None:
    failed = [r for r in results if not r.passed]
    if failed:
        raise GateError(f"{len(failed)} validation gate(s) failed: " + "; ".join(r.describe() for r in failed))
