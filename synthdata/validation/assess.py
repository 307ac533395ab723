"""A synthetic set assessed: every image judged, the set filtered and refilled, the accepted set
measured against held-out real images and held to the recipe's gates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from synthdata.validation.figures import ValidationFigures, measure_set
from synthdata.validation.filter import FilterResult, run_filter
from synthdata.validation.gates import GateResult, evaluate_gates

if TYPE_CHECKING:
    from synthdata.validation.calibration import Calibration
    from synthdata.validation.filter import Replacements
    from synthdata.validation.inputs import ValidationInputs
    from synthdata.validation.settings import ValidateSettings


@dataclass
class Assessment:
    filtered: FilterResult
    dropped: dict[str, dict[str, int]]
    """Per class, how many images each reason dropped."""
    figures: ValidationFigures
    gates: list[GateResult]

    @property
    def passed(self) -> bool:
        return self.figures.passed


def assess_set(
    inputs: ValidationInputs, calibration: Calibration, settings: ValidateSettings, replacements: Replacements
) -> Assessment:
    """Filter the synthetic set (refilling from ``replacements``), measure the accepted set and
    evaluate the gates; the set passes when every gate does and an image was accepted."""
    filtered = run_filter(
        calibration.judge, inputs.synthetic, inputs.source_frame, inputs.quota, settings.filter, replacements
    )
    dropped = filtered.dropped(inputs.classes)
    figures = measure_set(settings, filtered, dropped, calibration, inputs)
    gates = evaluate_gates(settings.gates, figures)
    figures.gates = [g.as_dict() for g in gates]
    figures.passed = all(g.passed for g in gates) and not filtered.accepted.empty
    return Assessment(filtered, dropped, figures, gates)
