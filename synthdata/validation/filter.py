"""The quality filter: judge every synthetic image, drop what the rules say, plan refills.

Each image is judged against the fine-tuning (real train) images: the domain classifier's
probabilities, its nearest train image in pixel and domain-feature space, its distance to its
own source(s) for a derived image, and its attributes. The filter then drops, first rule first:
a derived image closer to its source than the calibrated thresholds in both spaces
(``duplicate-of-source``), an image made from noise closer to a train image than the
memorisation thresholds (``near-copy``), an image the classifier assigns to another class
(``off-class``), one whose own class gets too low a probability (``low-confidence``).
Refills replace the dropped images round by round (new indices of the same sampling run),
asking each class for its deficit over its pass rate so far, capped; the accepted set keeps at
most each class's quota, in generation order (original images first).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from synthdata.data.card import read_card
from synthdata.data.manifest import read_manifest, verify_dataset
from synthdata.data.tensors import load_files
from synthdata.errors import DataError
from synthdata.settings import check_numbers
from synthdata.validation.coverage import ATTRIBUTES, attributes
from synthdata.validation.domain import DomainClassifier
from synthdata.validation.lineage import is_duplicate, source_distances, source_lists
from synthdata.validation.memorisation import nearest, pixel_vectors

CHUNK = 1024
"""Images judged at a time (streamed: a set never has to fit in memory)."""
REASONS = ("duplicate-of-source", "near-copy", "off-class", "low-confidence")


@dataclass(frozen=True)
class FilterSettings:
    """Which synthetic images are dropped before a set is accepted; the planner then makes
    replacements (new indices, new seeds) until every class has its quota or rounds run out."""

    enabled: bool = True
    min_confidence: float = field(default=0.5, metadata={"range": "[0, 1]"})
    """Drop an image whose own class gets a lower probability from the domain classifier."""
    drop_off_class: bool = True
    """Drop an image the domain classifier assigns to another class."""
    drop_near_copies: bool = True
    """Drop an image flagged as a near-copy of a fine-tuning image (pixel or feature space)."""
    max_rounds: int = field(default=3, metadata={"range": "[0, 100]"})
    """Regeneration rounds to refill the quota after dropping."""
    max_refill: float = field(default=3.0, metadata={"range": "(0, 1000]"})
    """Images generated per round, at most this multiple of the class's deficit (a class the
    filter almost always rejects cannot make a round run away)."""

    def __post_init__(self) -> None:
        check_numbers(self)


@dataclass
class Real:
    """Real images (uint8, dataset format) with labels."""

    images: torch.Tensor
    labels: torch.Tensor
    ids: list[str] = field(default_factory=list)
    """Image ids in row order, where known (the train split)."""


def heldout_real(dataset: Path, pool: Path | None, size: int, channels: int) -> Real:
    """Real images the fine-tune never saw and that are not test images: the dataset's
    validation split, plus the train images of ``pool`` (the parent of a long-tailed set)
    that are not in the dataset's train split."""
    frame = read_manifest(dataset)
    used = set(frame.loc[frame["split"] == "train", "id"]) | set(frame.loc[frame["split"] == "test", "id"])
    parts: list[tuple[Path, pd.DataFrame]] = [(dataset, frame[frame["split"] == "val"])]
    if pool is not None:
        verified_pool = verify_dataset(pool)
        parent = verified_pool.frame
        if list(verified_pool.card.classes) != list(read_card(dataset).classes):
            raise DataError(f"{pool}: its classes differ from {dataset}'s; it cannot serve as held-out real data")
        parts.append((pool, parent[(parent["split"] == "train") & ~parent["id"].isin(used)]))
    images, labels = [], []
    for folder, rows in parts:
        if len(rows):
            images.append(
                load_files(
                    folder,
                    list(rows["relpath"]),
                    size=size,
                    channels=channels,
                    description=f"load held-out {folder.name}",
                )
            )
            labels.append(torch.tensor(rows["label"].to_numpy(), dtype=torch.int64))
    if not images:
        raise DataError(f"{dataset}: no held-out real images (no val split and no --pool); validation needs some")
    return Real(torch.cat(images), torch.cat(labels))


@dataclass
class Judged:
    """Per-image judgments of generated images."""

    rows: pd.DataFrame
    """Manifest rows of the judged images (provenance included), with a ``_folder`` column:
    where each file is (the synthetic set, or the staging folder for a replacement)."""
    confidence: np.ndarray
    predicted: np.ndarray
    pixel_distance: np.ndarray
    pixel_neighbour: np.ndarray
    feature_distance: np.ndarray
    domain_features: torch.Tensor
    attributes: dict[str, np.ndarray]
    source_pixel_distance: np.ndarray
    """Distance to the nearest of its own sources (NaN for a ``noise`` image), pixel RMS."""
    source_feature_distance: np.ndarray
    """The same in domain-feature space."""

    @property
    def derived(self) -> np.ndarray:
        """Images made from real sources (``img2img``, ``interpolate``)."""
        return np.isfinite(self.source_pixel_distance)

    @staticmethod
    def concat(parts: list[Judged]) -> Judged:
        return Judged(
            pd.concat([p.rows for p in parts], ignore_index=True),
            np.concatenate([p.confidence for p in parts]),
            np.concatenate([p.predicted for p in parts]),
            np.concatenate([p.pixel_distance for p in parts]),
            np.concatenate([p.pixel_neighbour for p in parts]),
            np.concatenate([p.feature_distance for p in parts]),
            torch.cat([p.domain_features for p in parts]),
            {k: np.concatenate([p.attributes[k] for p in parts]) for k in ATTRIBUTES},
            np.concatenate([p.source_pixel_distance for p in parts]),
            np.concatenate([p.source_feature_distance for p in parts]),
        )

    def load(self, positions: list[int], size: int) -> torch.Tensor:
        """Images of judged rows by position."""
        out = []
        for pos in positions:
            row = self.rows.iloc[pos]
            out.append(
                load_files(
                    row["_folder"], [row["relpath"]], size=size, channels=int(row["channels"]), description="load"
                )[0]
            )
        return torch.stack(out) if out else torch.empty(0)


@dataclass
class Judge:
    """What every image is judged against: the domain classifier, the fine-tuning images in pixel
    and feature space, and the thresholds calibrated on held-out real images."""

    classifier: DomainClassifier
    train: Real
    size: int
    """The resolution images are judged at (the generator's)."""
    channels: int
    thresholds: dict[str, float]
    """Near-copy distances, pixel and feature: the memorisation quantile of held-out real images'
    nearest-neighbour distances to the train images."""
    train_pixels: torch.Tensor
    train_features: torch.Tensor

    @cached_property
    def train_index(self) -> dict[str, int]:
        """Row of each train id (computed once: every refill round is judged against it)."""
        return {identifier: i for i, identifier in enumerate(self.train.ids)}

    def judge(self, folder: Path, rows: pd.DataFrame) -> Judged:
        """Stream ``rows``' images in chunks: probabilities, nearest fine-tuning images, distance to
        their own sources, attributes."""
        parts: dict[str, list[Any]] = {k: [] for k in ("conf", "pred", "pd", "pn", "fd", "feat", "attr", "spd", "sfd")}
        labels = rows["label"].to_numpy()
        sources = source_lists(rows)
        index = self.train_index
        for start in range(0, len(rows), CHUNK):
            chunk = rows.iloc[start : start + CHUNK]
            images = load_files(
                folder,
                list(chunk["relpath"]),
                size=self.size,
                channels=self.channels,
                description=f"judge {folder.name}",
            )
            probabilities, features = self.classifier(images)
            parts["conf"].append(
                probabilities[torch.arange(len(chunk)), torch.tensor(labels[start : start + CHUNK])].numpy()
            )
            parts["pred"].append(probabilities.argmax(dim=1).numpy())
            distance, neighbour = nearest(pixel_vectors(images), self.train_pixels)
            parts["pd"].append(distance.numpy())
            own = sources[start : start + CHUNK]
            parts["spd"].append(source_distances(pixel_vectors(images), own, self.train_pixels, index))
            parts["sfd"].append(source_distances(features, own, self.train_features, index))
            parts["pn"].append(neighbour.numpy())
            parts["fd"].append(nearest(features, self.train_features)[0].numpy())
            parts["feat"].append(features)
            parts["attr"].append(attributes(images))
        attrs = {
            name: np.concatenate([a[name] for a in parts["attr"]]) if parts["attr"] else np.empty(0)
            for name in ATTRIBUTES
        }
        cat = lambda key: np.concatenate(parts[key]) if parts[key] else np.empty(0)  # noqa: E731
        feats = (
            torch.cat(parts["feat"])
            if parts["feat"]
            else torch.empty(0, self.classifier.model.feature_dim, dtype=torch.float64)
        )
        return Judged(
            rows.assign(_folder=str(folder)).reset_index(drop=True),
            cat("conf"),
            cat("pred"),
            cat("pd"),
            cat("pn").astype(int),
            cat("fd"),
            feats,
            attrs,
            cat("spd"),
            cat("sfd"),
        )

    def reasons(self, judged: Judged, rule: FilterSettings) -> list[str]:
        """Why each image is dropped under ``rule`` ('' when accepted): the first reason that applies."""
        labels = judged.rows["label"].to_numpy()
        out = []
        derived = judged.derived
        thresholds = self.thresholds
        for i in range(len(labels)):
            near = judged.pixel_distance[i] < thresholds["pixel"] or judged.feature_distance[i] < thresholds["feature"]
            copy = is_duplicate(judged.source_pixel_distance[i], judged.source_feature_distance[i], thresholds)
            if not rule.enabled:
                out.append("")
            elif rule.drop_near_copies and derived[i] and copy:
                out.append("duplicate-of-source")
            elif rule.drop_near_copies and not derived[i] and near:
                out.append("near-copy")
            elif rule.drop_off_class and judged.predicted[i] != labels[i]:
                out.append("off-class")
            elif judged.confidence[i] < rule.min_confidence:
                out.append("low-confidence")
            else:
                out.append("")
        return out


Replacements = Callable[[dict[str, int], dict[str, int]], tuple[Path, pd.DataFrame]]
"""Makes ``wanted[class]`` new images per class from ``next_index[class]`` on; returns the
folder they were written to and their manifest rows, in the order asked."""


@dataclass
class FilterResult:
    judged: Judged
    """Every judged image: the synthetic set's, then each refill round's."""
    reasons: list[str]
    """Why each judged image was dropped ('' when it passed)."""
    chosen: list[int]
    """Positions of the accepted images in ``judged`` (at most each class's quota)."""
    regenerated: int

    @property
    def accepted(self) -> pd.DataFrame:
        return self.judged.rows.iloc[self.chosen]

    def dropped(self, classes: list[str]) -> dict[str, dict[str, int]]:
        """Per class, how many images each reason dropped."""
        out: dict[str, dict[str, int]] = {c: {} for c in classes}
        names = self.judged.rows["label_name"]
        for pos, reason in enumerate(self.reasons):
            if reason:
                name = names.iloc[pos]
                out[name][reason] = out[name].get(reason, 0) + 1
        return out


def run_filter(
    judge: Judge,
    folder: Path,
    rows: pd.DataFrame,
    quota: dict[str, int],
    rule: FilterSettings,
    replacements: Replacements | None,
) -> FilterResult:
    """Judge the set, refill each class's deficit (when ``rule`` allows and ``replacements`` is
    given) and choose the accepted images."""
    judged = judge.judge(folder, rows)
    reasons = judge.reasons(judged, rule)
    parts, all_reasons = [judged], list(reasons)
    accepted = np.array([r == "" for r in reasons], dtype=bool)
    names = judged.rows["label_name"].to_numpy()
    deficit = {c: q - int(((names == c) & accepted).sum()) for c, q in quota.items()}
    regenerated = 0
    if rule.enabled and any(v > 0 for v in deficit.values()) and rule.max_rounds and replacements is not None:
        regenerated = _refill(judge, judged, accepted, deficit, rule, replacements, parts, all_reasons)
    everything = Judged.concat(parts)
    return FilterResult(everything, all_reasons, choose(everything, all_reasons, quota), regenerated)


def choose(judged: Judged, reasons: list[str], quota: dict[str, int]) -> list[int]:
    """At most the quota per class of the images that passed, in generation order."""
    keep = np.array([r == "" for r in reasons], dtype=bool)
    order = judged.rows.assign(_keep=keep, _pos=np.arange(len(keep)))
    chosen = []
    for name, q in quota.items():
        rows = order[(order["label_name"] == name) & order["_keep"]]
        chosen += list(rows["_pos"][:q])
    return sorted(chosen)


def refill_request(deficit: dict[str, int], rate: dict[str, float], cap: float) -> dict[str, int]:
    """Images to ask each short class for: its deficit over its pass rate so far (with a 20%
    margin), at most ``cap`` x the deficit, at least one."""
    return {c: max(1, min(math.ceil(d / rate[c] * 1.2), math.ceil(cap * d))) for c, d in deficit.items() if d > 0}


def _refill(
    judge: Judge,
    judged: Judged,
    accepted: np.ndarray,
    deficit: dict[str, int],
    rule: FilterSettings,
    replacements: Replacements,
    parts: list[Judged],
    all_reasons: list[str],
) -> int:
    """Replacement rounds until no class is short or the rounds run out; returns images made."""
    rows = judged.rows
    next_index = {
        c: int(rows.loc[rows["label_name"] == c, "sample_index"].max()) + 1
        for c in deficit
        if (rows["label_name"] == c).any()
    }
    rate = {}
    for c in deficit:
        made = (rows["label_name"] == c).to_numpy()
        rate[c] = max(float(accepted[made].mean()) if made.any() else 0.0, 0.1)
    regenerated = 0
    for _ in range(rule.max_rounds):
        wanted = refill_request(deficit, rate, rule.max_refill)
        if not wanted:
            break
        folder, new_rows = replacements(wanted, next_index)
        regenerated += len(new_rows)
        fresh = judge.judge(folder, new_rows)
        reasons = judge.reasons(fresh, rule)
        parts.append(fresh)
        all_reasons.extend(reasons)
        for c, n in wanted.items():
            made = (fresh.rows["label_name"] == c).to_numpy()
            ok = int(sum(1 for i in np.flatnonzero(made) if reasons[i] == ""))
            rate[c] = max(ok / n, 0.05)
            deficit[c] = max(deficit[c] - ok, 0)
            next_index[c] = next_index.get(c, 0) + n
    return regenerated
