"""The validation settings (a recipe's ``validate`` section): feature spaces, metric resampling,
the domain classifier, the filter and the gates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from synthdata.classify.train import ClassifierSettings
from synthdata.settings import check_numbers
from synthdata.validation.filter import FilterSettings
from synthdata.validation.gates import GateSettings


@dataclass(frozen=True)
class ValidateSettings:
    """The validation stage: feature spaces, metric resampling, domain classifier, filter, gates."""

    features: list[Literal["effnet", "domain"]] = field(default_factory=lambda: ["effnet", "domain"])
    resamples: int = field(default=10, metadata={"range": "[0, 10_000]"})
    """Resamples for the 95% intervals."""
    neighbours: int = field(default=5, metadata={"range": "[1, 1000]"})
    """k of the k-NN manifolds (precision, recall, density, coverage)."""
    memorisation_quantile: float = field(default=0.01, metadata={"range": "(0, 1)"})
    """Near-copy threshold: this quantile of held-out real nearest-neighbour distances."""
    classifier: ClassifierSettings = field(default_factory=lambda: ClassifierSettings(steps=800, balanced=True))
    """The domain classifier, trained on the real train split (class-balanced batches)."""
    filter: FilterSettings = field(default_factory=FilterSettings)
    gates: GateSettings = field(default_factory=GateSettings)
    seed: int = field(default=0, metadata={"range": "seed"})

    def __post_init__(self) -> None:
        check_numbers(self)
        if not self.features:
            raise ValueError("validate.features must name at least one feature space")
