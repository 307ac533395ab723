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
from synthdata.validation.filter import Judged, Real
from synthdata.validation.lineage import is_duplicate, quantiles, source_lists, within_source_diversity
from synthdata.validation.realism import MetricEstimate, measure, standard_metrics

if TYPE_CHECKING:
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


def measure_set(
    settings: ValidateSettings,
    everything: Judged,
    chosen: list[int],
    heldout: Real,
    heldout_features: torch.Tensor,
    train: Real,
    classes: list[str],
    quota: dict[str, int],
    thresholds: dict[str, float],
    real_nearest: dict[str, torch.Tensor],
) -> ValidationFigures:
    """Realism, coverage, diversity and memorisation figures of the accepted set."""
    generator = torch.Generator().manual_seed(settings.seed)
    accepted_labels = torch.as_tensor(everything.rows["label"].to_numpy()[chosen], dtype=torch.int64)
    accepted_domain = everything.domain_features[chosen]
    accepted_count = len(chosen)
    overall: dict[str, MetricEstimate] = {}
    if accepted_count >= 3:
        subset = torch.randperm(accepted_count, generator=generator)[:MAX_METRIC_SAMPLES]
        # measure() uses a reference and a floor sample of the synthetic count each: no more.
        pool = torch.randperm(len(heldout.images), generator=generator)[: 2 * len(subset)]
        if "domain" in settings.features:
            overall.update(
                measure(
                    accepted_domain[subset],
                    heldout_features[pool],
                    standard_metrics("domain", k=settings.neighbours),
                    resamples=settings.resamples,
                    seed=settings.seed,
                )
            )
        if "effnet" in settings.features:
            effnet = EffNetFeatures()
            images = everything.load([chosen[i] for i in subset.tolist()], heldout.images.shape[-1])
            overall.update(
                measure(
                    effnet(images),
                    effnet(heldout.images[pool]),
                    standard_metrics("EffNet", k=settings.neighbours),
                    resamples=settings.resamples,
                    seed=settings.seed,
                )
            )
    per_class: dict[str, dict[str, Any]] = {}
    labels_all = everything.rows["label_name"].to_numpy()
    derived = everything.derived
    # Memorisation is asked of images made from noise; a derived image is judged against its own source.
    near = ~derived & (
        (everything.pixel_distance < thresholds["pixel"]) | (everything.feature_distance < thresholds["feature"])
    )
    duplicate = derived & is_duplicate(
        everything.source_pixel_distance, everything.source_feature_distance, thresholds
    )
    chosen_sources = source_lists(everything.rows.iloc[chosen])
    for label, name in enumerate(classes):
        if name not in quota:
            continue
        mine = accepted_domain[accepted_labels == label]
        real = heldout_features[heldout.labels == label]
        made = labels_all == name
        entry: dict[str, Any] = {
            "quota": quota[name],
            "accepted": int(len(mine)),
            "fill": len(mine) / quota[name],
            "generated": int(made.sum()),
            "near_copy_fraction": float(near[made & ~derived].mean()) if (made & ~derived).any() else float("nan"),
            "diversity_ratio": diversity(mine) / diversity(real)
            if len(mine) >= 2 and len(real) >= 2
            else float("nan"),
            "real_heldout": int(len(real)),
        }
        if (made & derived).any():
            own = accepted_labels.numpy() == label
            entry.update(
                {
                    "duplicate_of_source_fraction": float(duplicate[made & derived].mean()),
                    "source_pixel_distance": float(np.median(everything.source_pixel_distance[made & derived])),
                    "source_feature_distance": float(np.median(everything.source_feature_distance[made & derived])),
                    "sources_used": len(
                        {
                            s
                            for p, ids in zip(chosen, chosen_sources, strict=True)
                            if labels_all[p] == name
                            for s in ids
                        }
                    ),
                    "within_source_diversity_ratio": within_source_diversity(
                        mine, [ids for ids, o in zip(chosen_sources, own, strict=True) if o], real
                    ),
                }
            )
        if len(mine) >= 3 and len(real) >= 6:
            figures = measure(
                mine,
                real,
                standard_metrics("domain", k=min(settings.neighbours, 3)),
                resamples=settings.resamples,
                seed=settings.seed,
            )
            entry.update({k: v.as_dict() for k, v in figures.items()})
        per_class[name] = entry
    real_attributes = attributes(heldout.images)
    train_attributes = attributes(train.images)
    chosen_attributes = {k: v[chosen] for k, v in everything.attributes.items()}
    gaps = attribute_gaps(real_attributes, chosen_attributes, heldout.labels.numpy(), accepted_labels.numpy(), classes)
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
    clusters = cluster_coverage(heldout_features, accepted_domain, seed=settings.seed) if accepted_count else {}
    counts_before = {c: int((train.labels == i).sum()) for i, c in enumerate(classes)}
    counts_after = {c: counts_before[c] + int((accepted_labels == i).sum()) for i, c in enumerate(classes)}
    return ValidationFigures(
        overall={k: v.as_dict() for k, v in overall.items()},
        classes=per_class,
        histogram={"before": counts_before, "after": counts_after},
        attributes=gaps,
        clusters=clusters,
        memorisation={
            "thresholds": thresholds,
            "checked": int((~derived).sum()),
            "near_copies": int(near.sum()),
            "near_copy_fraction": float(near.sum() / max(int((~derived).sum()), 1)),
        },
        lineage={
            "derived": int(derived.sum()),
            "duplicates_of_source": int(duplicate.sum()),
            "distance_to_source": {
                "pixel": quantiles(everything.source_pixel_distance[derived]),
                "feature": quantiles(everything.source_feature_distance[derived]),
            },
            "real_nearest_neighbour": {space: quantiles(d.numpy()) for space, d in real_nearest.items()},
            "thresholds": thresholds,
        },
    )


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
