"""Lineage-aware checks for images derived from real ones (``img2img``, ``interpolate``).

A derived image is *meant* to resemble its source, so the memorisation test (is it a near-copy
of any fine-tuning image?) would flag every good low-strength variant. Instead each derived
image is compared with its own source(s): its distance to the nearest of them, in pixel space
(RMS on [0, 1] pixels) and in domain-feature space, is set against the distribution of real
images' nearest-neighbour distances (held-out real images to the fine-tuning set). A variant
closer to its source than the calibrated thresholds (the quantile the memorisation test uses)
in *both* spaces adds nothing a copy would not and is dropped as ``duplicate-of-source``. Both,
not either: a variant that keeps its source's layout and stain (close in pixels) but that the
domain classifier sees as a different cell (far in features) is what real-anchored generation
is for, and a low-strength variant lies closer in pixels than real neighbours ever do. Diversity is
reported *within* the variants of each source, against the real class's diversity: variants
that all collapse onto one image are as useless as copies.

Sources must be train images of the dataset the set was made for; any other id is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from synthdata.errors import DataError
from synthdata.validation.coverage import diversity


def source_lists(rows: pd.DataFrame) -> list[list[str]]:
    """Each row's source ids (empty for a ``noise`` image or a set without lineage columns)."""
    if "source_ids" not in rows.columns:
        return [[] for _ in range(len(rows))]
    return [[s for s in str(value).split(";") if s] for value in rows["source_ids"].fillna("")]


def check_lineage(rows: pd.DataFrame, train_ids: set[str], where: str) -> None:
    """Refuse a row whose source is not a train image of the dataset (a val or test image, or
    one of another dataset)."""
    for row_id, sources in zip(rows["id"], source_lists(rows), strict=True):
        foreign = [s for s in sources if s not in train_ids]
        if foreign:
            raise DataError(
                f"{where}: image {row_id} names source {foreign[0]!r}, which is not a train image of the dataset"
            )


def source_distances(
    vectors: torch.Tensor, sources: list[list[str]], train_vectors: torch.Tensor, train_index: dict[str, int]
) -> np.ndarray:
    """Each vector's distance to the nearest of its own sources (NaN without a source)."""
    out = np.full(len(vectors), np.nan)
    for i, ids in enumerate(sources):
        if ids:
            own = train_vectors[[train_index[s] for s in ids]].float()
            out[i] = float(torch.cdist(vectors[i : i + 1].float(), own).min())
    return out


def within_source_diversity(features: torch.Tensor, sources: list[list[str]], real_features: torch.Tensor) -> float:
    """Mean pairwise distance among the variants of one source, averaged over sources with two
    or more variants, over the real class's mean pairwise distance (NaN when not measurable)."""
    groups: dict[str, list[int]] = {}
    for i, ids in enumerate(sources):
        if ids:
            groups.setdefault(ids[0], []).append(i)
    values = [diversity(features[rows]) for rows in groups.values() if len(rows) >= 2]
    real = diversity(real_features) if len(real_features) >= 2 else float("nan")
    if not values or not real == real or real == 0:
        return float("nan")
    return float(np.mean(values) / real)


def is_duplicate(pixel: Any, feature: Any, thresholds: dict[str, float]) -> Any:
    """Closer to its own source than the thresholds in pixel *and* feature space (NaN: no source)."""
    return (pixel < thresholds["pixel"]) & (feature < thresholds["feature"])


def quantiles(values: np.ndarray) -> dict[str, float]:
    """Median and 10th / 90th percentiles of the finite values (NaN when there are none)."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return {"median": float("nan"), "p10": float("nan"), "p90": float("nan"), "n": 0}
    p10, median, p90 = np.percentile(finite, [10, 50, 90])
    return {"median": float(median), "p10": float(p10), "p90": float(p90), "n": int(len(finite))}
