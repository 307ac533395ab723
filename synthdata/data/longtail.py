"""Long-tailed variants of a dataset, by the CIFAR-10-LT protocol.

Class at rank i (of C) keeps n_i = int(n_max * rho^(-i/(C-1))) train images, rho being the
imbalance. Which class gets which rank is a seeded permutation, recorded on the card. The
validation split keeps the same per-class fraction as train (a team's labelled validation data
is as imbalanced as its training data); the test split is copied whole, never subsampled.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from synthdata.data.card import DatasetCard, read_card
from synthdata.data.manifest import SPLITS, class_counts, manifest_hash, read_manifest
from synthdata.data.writer import DatasetWriter
from synthdata.errors import DataError
from synthdata.progress import progress_bar
from synthdata.provenance import created_by
from synthdata.settings import check_numbers


@dataclass(frozen=True)
class LongtailSettings:
    """The CIFAR-10-LT protocol: n_i = n_max * imbalance^(-i/(C-1)) on the train split."""

    enabled: bool = True
    imbalance: float = field(default=100.0, metadata={"range": "[1, 10_000]"})
    """rho: the ratio between the largest and the smallest class."""
    max_per_class: int | None = field(default=None, metadata={"range": "[1, 10_000_000]"})
    """n_max; None takes the largest value every class can supply."""
    seed: int = field(default=0, metadata={"range": "seed"})
    """Seeds the permutation that picks which class is rare, and the subsampling."""

    def __post_init__(self) -> None:
        check_numbers(self)


@dataclass(frozen=True)
class LongtailPlan:
    ranking: list[str]
    """Class names from the most to the least frequent."""
    targets: dict[str, int]
    """Train images kept per class."""
    n_max: int


def plan_longtail(train_counts: dict[str, int], classes: list[str], settings: LongtailSettings) -> LongtailPlan:
    """Per-class train targets; a class that cannot supply its target is an error naming it."""
    if len(classes) < 2:
        raise DataError("a long-tailed variant needs at least two classes")
    order = np.random.default_rng(settings.seed).permutation(len(classes))
    ranking = [classes[i] for i in order]
    last = len(classes) - 1
    decay = [settings.imbalance ** (-rank / last) for rank in range(len(classes))]
    feasible = min(int(train_counts.get(name, 0) / decay[rank] + 1e-9) for rank, name in enumerate(ranking))
    n_max = settings.max_per_class if settings.max_per_class is not None else feasible
    targets = {name: int(n_max * decay[rank] + 1e-9) for rank, name in enumerate(ranking)}
    for name in ranking:
        if targets[name] > train_counts.get(name, 0):
            raise DataError(
                f"class '{name}' has {train_counts.get(name, 0)} train images but the profile asks for "
                f"{targets[name]}; lower max_per_class (at most {feasible} works)"
            )
        if targets[name] < 1:
            raise DataError(
                f"imbalance {settings.imbalance:g} with max_per_class {n_max} leaves class '{name}' with no image"
            )
    return LongtailPlan(ranking, targets, n_max)


def _subsample(frame: pd.DataFrame, split: str, keep: dict[str, int], seed: int) -> pd.DataFrame:
    parts = []
    for offset, name in enumerate(sorted(keep)):
        rows = frame[(frame["split"] == split) & (frame["label_name"] == name)].sort_values("id")
        chosen = np.random.default_rng([seed, offset]).permutation(len(rows))[: keep[name]]
        parts.append(rows.iloc[np.sort(chosen)])
    return pd.concat(parts) if parts else frame.iloc[:0]


def build_longtail(parent: Path | str, out: Path | str, settings: LongtailSettings) -> tuple[Path, LongtailPlan]:
    """Write the long-tailed variant of ``parent`` to ``out`` (atomically, resumable).

    With ``settings.enabled`` false the variant keeps every image (for a naturally long-tailed
    source such as GTSRB), so later stages always read the same folder.
    """
    parent, out = Path(parent), Path(out)
    frame, card = read_manifest(parent), read_card(parent)
    # 1. the per-class train targets, and the rows each split keeps
    train = class_counts(frame, "train")
    if settings.enabled:
        plan = plan_longtail(train, card.classes, settings)
    else:
        ranking = sorted(card.classes, key=lambda name: -train.get(name, 0))
        plan = LongtailPlan(ranking, {name: train.get(name, 0) for name in card.classes}, max(train.values()))
    kept = _kept_rows(frame, card.classes, plan, train, settings.seed)
    # 2. the derivation's record, whose hash keys a resumable build
    record = {
        "parent": parent.name,
        "parent_manifest_sha256": card.manifest_sha256,
        "enabled": settings.enabled,
        "imbalance": settings.imbalance if settings.enabled else None,
        "n_max": plan.n_max,
        "seed": settings.seed,
        "ranking": plan.ranking,
        "train_targets": plan.targets,
        "val_policy": "same per-class fraction as train (at least 1)",
        "test_policy": "copied whole",
    }
    key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
    writer = DatasetWriter(out, build_key=key)
    # 3. copy the kept files, each checked against its parent row
    derived = _copy_checked(writer, parent, frame, kept, out.name)
    # 4. the card says what was derived, and how
    writer.publish(derived, _derived_card(card, derived, out.name, settings, record), extra={"longtail.json": record})
    return out, plan


def _kept_rows(
    frame: pd.DataFrame, classes: list[str], plan: LongtailPlan, train: dict[str, int], seed: int
) -> pd.DataFrame:
    """Train subsampled to the plan's targets, val to the same per-class fractions (at least 1
    image), test whole."""
    fractions = {name: plan.targets[name] / train[name] for name in classes}
    val = class_counts(frame, "val")
    val_keep = {name: max(1, round(count * fractions[name])) for name, count in val.items()}
    return pd.concat(
        [
            _subsample(frame, "train", plan.targets, seed),
            _subsample(frame, "val", val_keep, seed + 1),
            frame[frame["split"] == "test"],
        ]
    )


def _copy_checked(
    writer: DatasetWriter, parent: Path, frame: pd.DataFrame, kept: pd.DataFrame, name: str
) -> pd.DataFrame:
    """Each kept file into ``writer`` with its row; the derived manifest, once every file's
    sha256 is the parent row's."""
    with progress_bar(f"longtail {name}", total=len(kept)) as bar:
        for row in kept.to_dict("records"):
            writer.add(row["relpath"], (parent / row["relpath"]).read_bytes(), row)
            bar.advance()
    derived = writer.frame()
    mismatched = derived[derived["sha256"] != derived["id"].map(frame.set_index("id")["sha256"])]
    if len(mismatched):
        raise DataError(
            f"{parent}: {len(mismatched)} files differ from their manifest rows, e.g. {mismatched['relpath'].iloc[0]}"
        )
    return derived


def _derived_card(
    card: DatasetCard, derived: pd.DataFrame, name: str, settings: LongtailSettings, record: dict
) -> DatasetCard:
    counts = {s: class_counts(derived, s) for s in SPLITS if (derived["split"] == s).any()}
    return DatasetCard(
        **{
            **vars(card),
            "name": name,
            "description": card.description
            + (
                f" Long-tailed (imbalance {settings.imbalance:g})."
                if settings.enabled
                else " Class counts as they come."
            ),
            "counts": {s: {c: counts[s].get(c, 0) for c in card.classes} for s in counts},
            "manifest_sha256": manifest_hash(derived),
            "split_protocol": f"{card.split_protocol}; train long-tailed, val same fractions, test whole",
            "derived_from": record,
            "created_by": created_by(),
        }
    )
