"""How many synthetic images each class gets: a policy over the real class counts, with a cap.

Policies (``synthetic`` is what is generated, ``real`` the class's real train count):

- ``to-max``: fill every class up to the largest real class, ``synthetic = max(real) - real``;
- ``to-target``: fill every class up to ``target``, ``synthetic = max(target - real, 0)``;
- ``share``: add a share of the real count, ``synthetic = round(share * real)``.

Then the cap: ``synthetic <= floor(max_ratio * real)`` per class (default 10:1; gains from
synthetic data saturate well before that). A class with no real image gets nothing: there is no
evidence to condition on and no ratio to respect. Classes left out of ``classes`` get nothing.

Last the budget: with ``max_images``, a plan asking for more images in all is cut by filling
the classes from the bottom up — every class is raised towards a common total (real +
synthetic), never past its planned count, with the level chosen so the budget is met (the last
few images go one each to the earliest classes at that level). The rarest classes are served
first, which is what the synthetic set is for. Image seeds depend on the class and index only,
so a smaller budget keeps a prefix of the images a larger one would make.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from synthdata.errors import SynthdataError

if TYPE_CHECKING:
    from synthdata.sampling.settings import SampleSettings

Policy = Literal["to-max", "to-target", "share"]
"""The quota policies, spelled once (``sample.policy``, ``--policy``)."""


@dataclass(frozen=True)
class ClassQuota:
    name: str
    real: int
    wanted: int
    """What the policy asks for, before the cap."""
    synthetic: int
    """What will be generated: ``wanted`` after the cap."""
    cap: int
    """``floor(max_ratio * real)``."""
    capped_count: int | None = None
    """What the cap allowed before the budget cut it (``None``: the budget did not apply)."""

    @property
    def capped(self) -> bool:
        return self.synthetic < self.wanted

    @property
    def budgeted(self) -> bool:
        """The total budget, not only the per-class cap, cut this class."""
        return self.capped_count is not None and self.synthetic < self.capped_count

    @property
    def total(self) -> int:
        return self.real + self.synthetic


@dataclass(frozen=True)
class QuotaPlan:
    policy: str
    max_ratio: float
    classes: list[ClassQuota]
    max_images: int | None = None

    @property
    def synthetic(self) -> int:
        return sum(q.synthetic for q in self.classes)

    def counts(self) -> dict[str, int]:
        """Class name -> synthetic images to generate (classes with none included)."""
        return {q.name: q.synthetic for q in self.classes}

    def rows(self) -> list[dict[str, object]]:
        """The plan as table rows (for a dry run, a JSON record, an MLflow artifact)."""
        return [
            {
                "class": q.name,
                "real": q.real,
                "wanted": q.wanted,
                "cap": q.cap,
                "synthetic": q.synthetic,
                "total": q.total,
                "capped": q.capped,
                "budgeted": q.budgeted,
            }
            for q in self.classes
        ]


def plan_quotas(real_counts: dict[str, int], settings: SampleSettings) -> QuotaPlan:
    """The per-class plan for ``real_counts`` (class name -> real train images), in its key order,
    by the policy, cap, classes and budget of ``settings`` (checked when they were made)."""
    negative = [name for name, count in real_counts.items() if count < 0]
    if negative:
        raise SynthdataError(f"negative real count for class '{negative[0]}'")
    chosen = set(real_counts) if settings.classes is None else set(settings.classes)
    unknown = sorted(chosen - set(real_counts))
    if unknown:
        raise SynthdataError(
            f"unknown class '{unknown[0]}' in the sampling plan; the dataset has {', '.join(real_counts)}"
        )
    largest = max(real_counts.values(), default=0)
    quotas = []
    for name, real in real_counts.items():
        if name not in chosen:
            wanted = 0
        elif settings.policy == "to-max":
            wanted = largest - real
        elif settings.policy == "to-target":
            wanted = max(int(settings.target) - real, 0)
        else:
            # Half-up rounding, not Python's banker's rounding: 0.5 * 3 gives 2.
            wanted = int(math.floor(float(settings.share) * real + 0.5))
        cap = int(math.floor(settings.max_ratio * real + 1e-9))
        quotas.append(ClassQuota(name, real, wanted, min(wanted, cap), cap))
    budget = settings.max_images
    if budget is not None and sum(q.synthetic for q in quotas) > budget:
        budgeted = _within_budget([q.real for q in quotas], [q.synthetic for q in quotas], budget)
        quotas = [replace(q, synthetic=n, capped_count=q.synthetic) for q, n in zip(quotas, budgeted, strict=True)]
    return QuotaPlan(settings.policy, float(settings.max_ratio), quotas, budget)


def _within_budget(real: list[int], planned: list[int], budget: int) -> list[int]:
    """Water-filling: the highest common level of real + synthetic that ``budget`` reaches, each
    class capped at its planned count; leftover images one each to the earliest classes that
    could still grow."""

    def used(level: int) -> int:
        return sum(min(p, max(level - r, 0)) for r, p in zip(real, planned, strict=True))

    low, high = 0, max(r + p for r, p in zip(real, planned, strict=True))
    while low < high:
        middle = (low + high + 1) // 2
        if used(middle) <= budget:
            low = middle
        else:
            high = middle - 1
    out = [min(p, max(low - r, 0)) for r, p in zip(real, planned, strict=True)]
    growing = [i for i, (r, p) in enumerate(zip(real, planned, strict=True)) if out[i] < p and r + out[i] == low]
    for i in growing[: budget - sum(out)]:
        out[i] += 1
    return out
