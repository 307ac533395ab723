"""What a utility comparison trains and scores on: the dataset's real splits and the synthetic
sets its arms need, loaded at one size and checked before any training.

A synthetic set must have the dataset's classes and have been made from this very dataset (its
manifest records the source manifest's hash). Every training and validation image's pixels are
hashed and compared with every test image's: one match stops the stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthdata.data.card import read_card
from synthdata.data.leaks import check_disjoint
from synthdata.data.manifest import manifest_hash, read_manifest, verify_dataset
from synthdata.data.tensors import load_split
from synthdata.downstream.arms import ARMS
from synthdata.downstream.metrics import class_counts, rare_classes
from synthdata.downstream.runner import Pool
from synthdata.downstream.settings import UtilitySettings
from synthdata.errors import DataError


@dataclass
class UtilityInputs:
    classes: list[str]
    size: int
    """The side every image is loaded at: ``utility.image_size``, or the dataset's larger side."""
    real: Pool
    val: Pool | None
    test: Pool
    synthetic: dict[str, Pool]
    """The synthetic sets the arms need, by kind (``adapted``, ``scratch``), in sorted order."""
    leak_check: dict[str, Any]
    train_counts: dict[str, int]
    rare: list[str]


def load_inputs(dataset: Path, settings: UtilitySettings, sets: dict[str, Path | None]) -> UtilityInputs:
    """The verified dataset's splits and the synthetic sets (``sets``, by kind) the arms need."""
    verified = verify_dataset(dataset)
    card = verified.card
    classes, channels = list(card.classes), card.channels
    size = settings.image_size or max(card.width, card.height)
    needed = _needed_sets(settings, sets)
    has_val = sum(card.counts.get("val", {}).values()) > 0
    if settings.budget.rule == "plateau" and not has_val:  # before any image is loaded
        raise DataError(
            f"{dataset}: no 'val' images, which utility.budget.rule 'plateau' needs; use rule 'epochs' or 'steps'"
        )

    def split(name: str) -> Pool:
        return Pool(*load_split(dataset, name, size=size, channels=channels)[:2], verified.manifest_sha256)

    real, test = split("train"), split("test")
    val = split("val") if has_val else None
    pools = {kind: _load_synthetic(sets[kind], classes, verified.manifest_sha256, channels, size) for kind in needed}
    leak = check_disjoint(
        test.images,
        real=real.images,
        **({"val": val.images} if val else {}),
        **{f"synthetic_{k}": p.images for k, p in pools.items()},
    )
    train_counts = class_counts(real.labels, classes)
    rare = rare_classes(train_counts, settings.rare_fraction)
    return UtilityInputs(classes, size, real, val, test, pools, leak, train_counts, rare)


def _needed_sets(settings: UtilitySettings, sets: dict[str, Path | None]) -> list[str]:
    """The kinds of synthetic set the arms train on, sorted; an error names the option missing."""
    needed = {ARMS[a].synthetic for a in settings.arms} - {None}
    for kind in sorted(needed):
        if sets[kind] is None:
            option = "--synthetic" if kind == "adapted" else "--scratch"
            raise DataError(
                f"arms {[a for a in settings.arms if ARMS[a].synthetic == kind]} need a synthetic set: give {option}"
            )
    return sorted(needed)


def _load_synthetic(folder: Path, classes: list[str], dataset_manifest: str, channels: int, size: int) -> Pool:
    card = read_card(folder)
    if list(card.classes) != classes:
        raise DataError(f"{folder}: synthetic classes {list(card.classes)} differ from the dataset's {classes}")
    if min(card.width, card.height) < size:
        # up-scaled synthetic images beside real ones at full detail would test blur, not the set
        raise DataError(
            f"{folder}: synthetic images are {card.width}x{card.height} but the downstream model reads {size} px; "
            f"set utility.image_size: {min(card.width, card.height)} (real images are then read at it too), "
            "or make the set with a base of the dataset's size"
        )
    frame = read_manifest(folder)
    sources = set(frame["source_manifest_sha256"]) if "source_manifest_sha256" in frame else set()
    if sources != {dataset_manifest}:
        raise DataError(
            f"{folder}: synthetic set was made from another dataset (source manifest {sorted(sources)[:1]}), not this one"
        )
    images, labels, _ = load_split(folder, "train", size=size, channels=channels)
    return Pool(images, labels, manifest_hash(frame))  # the rows read, whatever the card says
