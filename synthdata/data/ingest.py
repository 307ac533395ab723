"""Ingest a source into a canonical dataset folder ``datasets/<name>/``.

Every image is decoded and checked, exact duplicates are removed (a copy in the official test
split wins; copies that disagree on the label are dropped), splits are made where the source
has none, and the folder is written atomically: images as PNG, ``manifest.parquet``, card.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from synthdata.config.strict import check_numbers
from synthdata.data.card import DatasetCard
from synthdata.data.images import array_to_uint8, decode_image, encode_png, resize
from synthdata.data.manifest import SPLITS, manifest_hash
from synthdata.data.sources import USER_FORMATS, Source
from synthdata.data.splits import SplitSettings, stratified_holdout
from synthdata.data.writer import DatasetWriter
from synthdata.errors import DataError
from synthdata.hashing import sha256_bytes
from synthdata.paths import path_component
from synthdata.progress import progress_bar
from synthdata.provenance import created_by

_SPLIT_PRIORITY = {"test": 0, "val": 1, "train": 2, None: 3}
# The smallest side a source image may have: the floor data.image_size has too. Smaller images
# (1x1 thumbnails, icons) are not domain images, resized or not.
MIN_SIDE = 8


@dataclass(frozen=True)
class DataSettings:
    """Where the real data comes from and what shape it is declared to have."""

    source: str
    """A registered source (pbc, pneumoniamnist, breastmnist, eurosat, gtsrb, cifar10) or a
    user format: ``imagefolder`` (folder or zip of class folders) or ``npz`` (MedMNIST style)."""
    path: str | None = None
    """For ``imagefolder``/``npz``: the folder, zip or npz file (relative to the working dir)."""
    classes: list[str] | None = None
    """Declared label set, in label order. Built-in sources declare their own; an image or a
    label outside the declared set is an error."""
    channels: Literal[1, 3] | None = field(default=None, metadata={"range": "[1, 3]"})
    """Declared channels; built-in sources declare their own, user data defaults to the first image."""
    image_size: int | None = field(default=None, metadata={"range": "[8, 1024]"})
    """Resize every image to this square size on ingest; None keeps the native size, which
    must then be the same for every image."""
    licence: str | None = None
    """Licence recorded on every manifest row (user data); built-in sources declare their own."""
    split: SplitSettings = field(default_factory=SplitSettings)

    def __post_init__(self) -> None:
        check_numbers(self)
        if self.source in USER_FORMATS and not self.path:
            raise ValueError(f"data.path is required for source '{self.source}'")
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise ValueError("data.classes has duplicate names")


@dataclass
class _Image:
    origin: str
    label_name: str
    split: str | None
    group: str | None
    png: bytes
    sha256: str
    shape: tuple[int, int, int]


@dataclass(frozen=True)
class IngestResult:
    path: Path
    manifest_sha256: str
    counts: dict[str, dict[str, int]]
    removed: dict[str, int]
    images: int


def _decode_all(source: Source, files: dict[str, Path], image_size: int | None) -> list[_Image]:
    """Every sample decoded and checked. The channel count is the declared one, else the first
    image's; the native size must be at least :data:`MIN_SIDE` on a side and, without
    ``image_size``, the first image's."""
    declared = source.info.channels
    images: list[_Image] = []
    first_origin, first_shape = "", (0, 0, 0)
    classes: set[str] = set()
    with progress_bar(f"ingest {source.info.name}", total=None) as bar:
        for raw in source.samples(files):
            if raw.label_name not in classes:
                # A class name becomes a folder name: one that cannot be is refused at its first
                # image, before any verdict on the data as a whole (duplicates, empty classes).
                classes.add(path_component(raw.label_name, raw.origin))
            if isinstance(raw.payload, np.ndarray):
                array = array_to_uint8(raw.payload, raw.origin, channels=declared)
            else:
                array = decode_image(raw.payload, raw.origin, channels=declared)
            height, width, channels = array.shape
            if min(height, width) < MIN_SIDE:
                raise DataError(
                    f"{raw.origin}: image is {width}x{height} pixels, smaller than {MIN_SIDE} px on a side"
                )
            if image_size is not None:
                array = resize(array, image_size)
            if not images:
                first_origin, first_shape = raw.origin, array.shape
            elif channels != first_shape[2]:
                # Only without a declared count (a declared one is checked on decoding).
                raise DataError(
                    f"{raw.origin}: wrong channel count {channels}; the first image, {first_origin}, has "
                    f"{first_shape[2]} and so set the dataset's (declare data.channels to choose it)"
                )
            elif array.shape != first_shape:
                first_h, first_w, first_c = first_shape
                raise DataError(
                    f"{raw.origin}: size {array.shape[1]}x{array.shape[0]}x{channels} differs from the first "
                    f"image's ({first_origin}) {first_w}x{first_h}x{first_c} (set data.image_size to resize)"
                )
            png = encode_png(array)
            images.append(
                _Image(raw.origin, raw.label_name, raw.split, raw.group, png, sha256_bytes(png), array.shape)
            )
            bar.advance()
    if not images:
        raise DataError(f"{source.where()}: the source holds no images")
    return images


def _deduplicate(images: list[_Image]) -> tuple[list[_Image], dict[str, int]]:
    """One image per sha256; see the module docstring for which copy is kept.

    Copies in two official splits are a leak (the same image trained on and tested on): the
    copy in the earlier split of test/val/train is kept and the leak is counted on the card.
    """
    by_hash: dict[str, list[_Image]] = defaultdict(list)
    for image in images:
        by_hash[image.sha256].append(image)
    kept, removed = [], Counter()
    for copies in by_hash.values():
        copies.sort(key=lambda im: (_SPLIT_PRIORITY[im.split], im.origin))
        keep = copies[0]
        if len({c.label_name for c in copies}) > 1 and keep.split != "test":
            removed["conflicting_label_duplicates"] += len(copies)
            continue
        kept.append(keep)
        across = sum(1 for c in copies[1:] if c.split != keep.split)
        removed["duplicates_across_splits"] += across
        removed["exact_duplicates"] += len(copies) - 1 - across
    return kept, {k: v for k, v in removed.items() if v}


def _assign_splits(images: list[_Image], settings: SplitSettings, where: str) -> str:
    """Fill in missing splits in place; returns a sentence describing the protocol.

    A source that gives splits must give train and test (a held-out test split is what every
    later comparison rests on); val is carved from train when it is missing.
    """
    official = {im.split for im in images}
    if None in official and len(official) > 1:
        raise DataError(f"{where}: the source gives a split for some images and not for others")
    for required in ("train", "test"):
        if official != {None} and required not in official:
            given = "/".join(s for s in SPLITS if s in official)
            raise DataError(
                f"{where}: has no {required} split; train and test are required when the source gives splits "
                f"(it gives {given}; val is carved from train when missing)"
            )

    def carve(pool: list[_Image], fraction: float, name: str, seed: int) -> None:
        labels = [im.label_name for im in pool]
        groups = [im.group or im.origin for im in pool]
        for image, held in zip(pool, stratified_holdout(labels, groups, fraction, seed), strict=True):
            if held:
                image.split = name

    grouped = any(im.group for im in images)
    how = "by group (whole tracks)" if grouped else "stratified by class"
    if official == {None}:
        carve(images, settings.test_fraction, "test", settings.seed)
        rest = [im for im in images if im.split is None]
        carve(rest, settings.val_fraction / (1.0 - settings.test_fraction), "val", settings.seed + 1)
        for image in images:
            image.split = image.split or "train"
        return (
            f"no official split: seeded ({settings.seed}) split {how}, test {settings.test_fraction:.0%}, "
            f"val {settings.val_fraction:.0%}, rest train"
        )
    if "val" not in official and settings.val_fraction > 0:
        carve([im for im in images if im.split == "train"], settings.val_fraction, "val", settings.seed)
        return f"official train/test; val carved from train {how}, {settings.val_fraction:.0%}, seed {settings.seed}"
    return "official " + "/".join(s for s in SPLITS if s in official)


def ingest(source: Source, out: Path | str, *, split: SplitSettings, image_size: int | None = None) -> IngestResult:
    """Build ``out`` from ``source``; on any :class:`DataError` nothing is published."""
    out = Path(out)
    files = source.fetch()
    inputs = source.input_files()
    where = source.where()
    images = _decode_all(source, files, image_size)
    classes = source.label_order({im.label_name for im in images})
    present = Counter(im.label_name for im in images)
    empty = [c for c in classes if present[c] == 0]
    if empty:
        raise DataError(f"{where}: declared classes with no images: {empty}")
    images, removed = _deduplicate(images)
    kept = Counter(im.label_name for im in images)
    emptied = [c for c in classes if kept[c] == 0]
    if emptied:
        raise DataError(
            f"{where}: classes {emptied} have only copies of images of other classes "
            "(removed as conflicting duplicates), so no image is left"
        )
    protocol = _assign_splits(images, split, where)

    key = hashlib.sha256(
        json.dumps([source.info.name, inputs, vars(split), image_size, created_by()["synthdata"]]).encode()
    ).hexdigest()
    writer = DatasetWriter(out, build_key=key)
    label_of = {name: index for index, name in enumerate(classes)}
    with progress_bar(f"write {out.name}", total=len(images)) as bar:
        for image in sorted(images, key=lambda im: im.sha256):
            image_id = image.sha256[:16]
            height, width, channels = image.shape
            writer.add(
                f"images/{image.split}/{image.label_name}/{image_id}.png",
                image.png,
                {
                    "id": image_id,
                    "label": label_of[image.label_name],
                    "label_name": image.label_name,
                    "split": image.split,
                    "width": width,
                    "height": height,
                    "channels": channels,
                    "source": source.info.name,
                    "licence": source.info.licence,
                    "origin": image.origin,
                    "group": image.group or "",
                },
            )
            bar.advance()
    frame = writer.frame()
    if frame["id"].duplicated().any():
        raise DataError(f"{where}: two different images share a 64-bit id prefix; report this")
    counts = {
        s: {c: int(n) for c, n in frame.loc[frame["split"] == s, "label_name"].value_counts().sort_index().items()}
        for s in SPLITS
        if (frame["split"] == s).any()
    }
    height, width, channels = images[0].shape
    card = DatasetCard(
        name=out.name,
        source=source.info.name,
        description=source.info.description,
        licence=source.info.licence,
        citation=source.info.citation,
        homepage=source.info.homepage,
        classes=classes,
        channels=channels,
        width=width,
        height=height,
        counts=counts,
        manifest_sha256=manifest_hash(frame),
        split_protocol=protocol,
        files=inputs,
        removed=removed,
        created_by=created_by(),
    )
    writer.publish(frame, card)
    return IngestResult(out, card.manifest_sha256, counts, removed, len(frame))
