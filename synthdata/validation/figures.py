"""The validation figures of an accepted set, measured against held-out real images.

Realism with intervals and floors (FD, KID, precision/recall/density/coverage in the domain
classifier's features and in ImageNet EffNet features), per-class figures (fill, near-copy
share, diversity, lineage), attribute and cluster coverage, memorisation. The stage's
``metrics.json`` is :meth:`ValidationFigures.as_dict`; gates, report and benchmarks read the
typed fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from synthdata.validation.coverage import (
    ATTRIBUTES,
    attribute_gaps,
    attributes,
    cluster_coverage,
    diversity,
    histogram,
)
from synthdata.validation.features import EffNetFeatures
from synthdata.validation.filter import FilterResult, Judged, Real
from synthdata.validation.lineage import is_duplicate, quantiles, source_lists, within_source_diversity
from synthdata.validation.realism import MetricEstimate, measure, standard_metrics

if TYPE_CHECKING:
    from synthdata.validation.calibration import Calibration
    from synthdata.validation.inputs import ValidationInputs
    from synthdata.validation.settings import ValidateSettings

MAX_METRIC_SAMPLES = 5000
"""Realism is measured on at most this many images per side (a seeded subset)."""


@dataclass
class ValidationFigures:
    """Everything validation measured, in the order ``metrics.json`` lists it."""

    overall: dict[str, dict[str, Any]]
    """Realism of the whole accepted set: metric name -> {value, ci95, floor, n}."""
    classes: dict[str, dict[str, Any]]
    """Per class with a quota: quota, accepted, fill, generated, near_copy_fraction,
    diversity_ratio, real_heldout, lineage figures for derived images, per-class realism."""
    histogram: dict[str, dict[str, int]]
    """Real train images per class ``before`` and with the accepted set ``after``."""
    attributes: dict[str, Any]
    clusters: dict[str, Any]
    memorisation: dict[str, Any]
    lineage: dict[str, Any]
    image_size: int = 0
    """The side images were judged and measured at: the generator's, or the dataset's if smaller."""
    domain_classifier: dict[str, Any] = field(default_factory=dict)
    """The judge's per-class accuracy on the real validation split and its training steps."""
    filter: dict[str, Any] = field(default_factory=dict)
    """Dropped per class and reason, regenerated, accepted, thresholds."""
    gates: list[dict[str, Any]] = field(default_factory=list)
    passed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationFigures:
        """Read back a ``metrics.json``."""
        return cls(**data)

    def jsonable(self) -> Any:
        return jsonable(self.as_dict())

    def flat(self) -> dict[str, float]:
        """The numbers MLflow logs."""
        return flat_metrics(self.as_dict())

    def headline(self) -> dict[str, Any]:
        """The few numbers DVC compares across experiments: images accepted, the worst class's
        fill, the near-copy fraction, FD in the domain classifier's features against its
        real-vs-real floor, and whether every gate passed."""
        fills = [c["fill"] for c in self.classes.values() if c.get("fill") is not None]
        realism = self.overall.get("FD-domain") or next(
            (v for k, v in self.overall.items() if k.startswith("FD-")), {"value": None, "floor": None}
        )
        return {
            "accepted": self.filter.get("accepted", sum(c["accepted"] for c in self.classes.values())),
            "fill_min": min(fills) if fills else None,
            "copies": self.memorisation.get("near_copy_fraction"),
            "FD": realism["value"],
            "FD_floor": realism["floor"],
            "passed": self.passed,
        }

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """The data plots: per class, the quota, the images accepted and dropped, the fill."""
        return {
            "validate-fill.csv": [
                {
                    "class": name,
                    "quota": entry["quota"],
                    "accepted": entry["accepted"],
                    "dropped": sum(self.filter.get("dropped", {}).get(name, {}).values()),
                    "fill": entry["fill"],
                }
                for name, entry in self.classes.items()
            ]
        }


@dataclass
class _Accepted:
    """The accepted images, as positions in the judged set with their labels, features and sources."""

    everything: Judged
    chosen: list[int]
    labels: torch.Tensor
    domain: torch.Tensor
    sources: list[list[str]]


@dataclass
class _Copies:
    """Per judged image: a near-copy of a fine-tuning image (images made from noise) or a
    duplicate of its own source (derived images)."""

    near: np.ndarray
    duplicate: np.ndarray


def measure_set(
    settings: ValidateSettings,
    filtered: FilterResult,
    dropped: dict[str, dict[str, int]],
    calibration: Calibration,
    inputs: ValidationInputs,
) -> ValidationFigures:
    """Realism, coverage, diversity and memorisation figures of the accepted set, with the
    judge's and the filter's own figures; the gates are left to evaluate."""
    everything, chosen, quota = filtered.judged, filtered.chosen, inputs.quota
    heldout, heldout_features, thresholds = calibration.heldout, calibration.heldout_features, calibration.thresholds
    accepted = _Accepted(
        everything,
        chosen,
        labels=torch.as_tensor(everything.rows["label"].to_numpy()[chosen], dtype=torch.int64),
        domain=everything.domain_features[chosen],
        sources=source_lists(everything.rows.iloc[chosen]),
    )
    overall = _overall_realism(settings, accepted, heldout, heldout_features)
    copies = _copies(everything, thresholds)
    per_class = {
        name: _class_figures(settings, accepted, copies, heldout, heldout_features, label, name, quota[name])
        for label, name in enumerate(inputs.classes)
        if name in quota
    }
    gaps = _attribute_coverage(accepted, heldout, calibration.train, inputs.classes)
    clusters = cluster_coverage(heldout_features, accepted.domain, seed=settings.seed) if len(chosen) else {}
    return ValidationFigures(
        overall={k: v.as_dict() for k, v in overall.items()},
        classes=per_class,
        histogram=_class_histogram(calibration.train, accepted, inputs.classes),
        attributes=gaps,
        clusters=clusters,
        memorisation=_memorisation(everything, copies, thresholds),
        lineage={**_lineage(everything, copies, thresholds, calibration.real_nearest), "mode": inputs.mode},
        image_size=inputs.size,
        domain_classifier={"val_accuracy": calibration.val_accuracy, "train_steps": calibration.classifier.log.steps},
        filter={
            "dropped": dropped,
            "regenerated": filtered.regenerated,
            "accepted": int(len(filtered.accepted)),
            "thresholds": thresholds,
        },
    )


def _overall_realism(
    settings: ValidateSettings, accepted: _Accepted, heldout: Real, heldout_features: torch.Tensor
) -> dict[str, MetricEstimate]:
    """Realism of the whole accepted set (a seeded subset of it) in each feature space asked for."""
    generator = torch.Generator().manual_seed(settings.seed)
    overall: dict[str, MetricEstimate] = {}
    if len(accepted.chosen) < 3:
        return overall
    subset = torch.randperm(len(accepted.chosen), generator=generator)[:MAX_METRIC_SAMPLES]
    # measure() uses a reference and a floor sample of the synthetic count each: no more.
    pool = torch.randperm(len(heldout.images), generator=generator)[: 2 * len(subset)]
    if "domain" in settings.features:
        overall.update(
            measure(
                accepted.domain[subset],
                heldout_features[pool],
                standard_metrics("domain", k=settings.neighbours),
                resamples=settings.resamples,
                seed=settings.seed,
            )
        )
    if "effnet" in settings.features:
        effnet = EffNetFeatures()
        images = accepted.everything.load([accepted.chosen[i] for i in subset.tolist()], heldout.images.shape[-1])
        overall.update(
            measure(
                effnet(images),
                effnet(heldout.images[pool]),
                standard_metrics("EffNet", k=settings.neighbours),
                resamples=settings.resamples,
                seed=settings.seed,
            )
        )
    return overall


def _copies(everything: Judged, thresholds: dict[str, float]) -> _Copies:
    derived = everything.derived
    # Memorisation is asked of images made from noise; a derived image is judged against its own source.
    near = ~derived & (
        (everything.pixel_distance < thresholds["pixel"]) | (everything.feature_distance < thresholds["feature"])
    )
    duplicate = derived & is_duplicate(
        everything.source_pixel_distance, everything.source_feature_distance, thresholds
    )
    return _Copies(near, duplicate)


def _class_figures(
    settings: ValidateSettings,
    accepted: _Accepted,
    copies: _Copies,
    heldout: Real,
    heldout_features: torch.Tensor,
    label: int,
    name: str,
    quota: int,
) -> dict[str, Any]:
    """One class's fill, near-copy share and diversity; lineage figures where it has derived
    images; realism where it has enough images on both sides."""
    everything, derived = accepted.everything, accepted.everything.derived
    mine = accepted.domain[accepted.labels == label]
    real = heldout_features[heldout.labels == label]
    made = everything.rows["label_name"].to_numpy() == name
    entry: dict[str, Any] = {
        "quota": quota,
        "accepted": int(len(mine)),
        "fill": len(mine) / quota,
        "generated": int(made.sum()),
        "near_copy_fraction": float(copies.near[made & ~derived].mean()) if (made & ~derived).any() else float("nan"),
        "diversity_ratio": diversity(mine) / diversity(real) if len(mine) >= 2 and len(real) >= 2 else float("nan"),
        "real_heldout": int(len(real)),
    }
    if (made & derived).any():
        entry.update(_class_lineage(accepted, copies, label, name, made & derived, mine, real))
    if len(mine) >= 3 and len(real) >= 6:
        figures = measure(
            mine,
            real,
            standard_metrics("domain", k=min(settings.neighbours, 3)),
            resamples=settings.resamples,
            seed=settings.seed,
        )
        entry.update({k: v.as_dict() for k, v in figures.items()})
    return entry


def _class_lineage(
    accepted: _Accepted,
    copies: _Copies,
    label: int,
    name: str,
    made_derived: np.ndarray,
    mine: torch.Tensor,
    real: torch.Tensor,
) -> dict[str, Any]:
    """A class's derived images: duplicate share, median distance to their source, sources used
    and diversity within a source's variants."""
    everything = accepted.everything
    labels_all = everything.rows["label_name"].to_numpy()
    own = accepted.labels.numpy() == label
    return {
        "duplicate_of_source_fraction": float(copies.duplicate[made_derived].mean()),
        "source_pixel_distance": float(np.median(everything.source_pixel_distance[made_derived])),
        "source_feature_distance": float(np.median(everything.source_feature_distance[made_derived])),
        "sources_used": len(
            {s for p, ids in zip(accepted.chosen, accepted.sources, strict=True) if labels_all[p] == name for s in ids}
        ),
        "within_source_diversity_ratio": within_source_diversity(
            mine, [ids for ids, o in zip(accepted.sources, own, strict=True) if o], real
        ),
    }


def _attribute_coverage(accepted: _Accepted, heldout: Real, train: Real, classes: list[str]) -> dict[str, Any]:
    """Attribute bins the accepted set leaves empty, and those it fills where train is thin."""
    real_attributes = attributes(heldout.images)
    train_attributes = attributes(train.images)
    chosen_attributes = {k: v[accepted.chosen] for k, v in accepted.everything.attributes.items()}
    gaps = attribute_gaps(real_attributes, chosen_attributes, heldout.labels.numpy(), accepted.labels.numpy(), classes)
    for name in ATTRIBUTES:  # fills are judged against the fine-tuning (train) images of each class
        edges = np.asarray(gaps[name]["edges"])
        for cls, entry in gaps[name]["classes"].items():
            label = classes.index(cls)
            train_share = histogram(train_attributes[name][train.labels.numpy() == label], edges)
            synthetic_share = np.asarray(entry["synthetic"])
            real_share = np.asarray(entry["real"])
            entry["train"] = train_share.round(4).tolist()
            entry["filled"] = [
                int(i) for i in np.flatnonzero((train_share < 0.1) & (real_share >= 0.1) & (synthetic_share >= 0.1))
            ]
    return gaps


def _class_histogram(train: Real, accepted: _Accepted, classes: list[str]) -> dict[str, dict[str, int]]:
    """Real train images per class ``before`` and with the accepted set ``after``."""
    before = {c: int((train.labels == i).sum()) for i, c in enumerate(classes)}
    after = {c: before[c] + int((accepted.labels == i).sum()) for i, c in enumerate(classes)}
    return {"before": before, "after": after}


def _memorisation(everything: Judged, copies: _Copies, thresholds: dict[str, float]) -> dict[str, Any]:
    checked = int((~everything.derived).sum())
    return {
        "thresholds": thresholds,
        "checked": checked,
        "near_copies": int(copies.near.sum()),
        "near_copy_fraction": float(copies.near.sum() / max(checked, 1)),
    }


def _lineage(
    everything: Judged, copies: _Copies, thresholds: dict[str, float], real_nearest: dict[str, torch.Tensor]
) -> dict[str, Any]:
    derived = everything.derived
    return {
        "derived": int(derived.sum()),
        "duplicates_of_source": int(copies.duplicate.sum()),
        "distance_to_source": {
            "pixel": quantiles(everything.source_pixel_distance[derived]),
            "feature": quantiles(everything.source_feature_distance[derived]),
        },
        "real_nearest_neighbour": {space: quantiles(d.numpy()) for space, d in real_nearest.items()},
        "thresholds": thresholds,
    }


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def flat_metrics(figures: dict[str, Any]) -> dict[str, float]:
    flat = {}
    for name, figure in figures["overall"].items():
        flat[name] = figure["value"]
        flat[f"{name}.floor"] = figure["floor"]
    for cls, entry in figures["classes"].items():
        for key in ("fill", "near_copy_fraction", "diversity_ratio"):
            if entry[key] == entry[key]:
                flat[f"{cls}.{key}"] = entry[key]
    flat["accepted"] = figures["filter"]["accepted"]
    flat["regenerated"] = figures["filter"]["regenerated"]
    return {k: float(v) for k, v in flat.items()}
