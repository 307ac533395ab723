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
from typing import Any, Literal

import numpy as np
import pandas as pd

from synthdata.data.card import DatasetCard
from synthdata.data.images import array_to_uint8, decode_image, encode_png, fit_square
from synthdata.data.manifest import SPLITS, manifest_hash
from synthdata.data.sources import USER_FORMATS, Source
from synthdata.data.splits import SplitSettings, stratified_holdout
from synthdata.data.writer import DatasetWriter
from synthdata.errors import DataError
from synthdata.hashing import sha256_bytes
from synthdata.paths import path_component
from synthdata.progress import progress_bar
from synthdata.provenance import created_by
from synthdata.settings import check_choices, check_numbers

_SPLIT_PRIORITY = {"test": 0, "val": 1, "train": 2, None: 3}
# The smallest side a source image may have: the floor data.image_size has too. Smaller images
# (1x1 thumbnails, icons) are not domain images, resized or not.
MIN_SIDE = 8


@dataclass(frozen=True)
class DataSettings:
    """Where the real data comes from and what shape it is declared to have."""

    source: str
    """A registered source (pbc, pneumoniamnist, breastmnist, eurosat, gtsrb, cifar10) or a
    user format: ``csv`` (image folder or zip + a label table), ``imagefolder`` (folder or zip of
    class folders) or ``npz`` (MedMNIST style)."""
    path: str | None = None
    """For user formats: the folder, zip or npz file (relative to the working dir)."""
    labels: str | None = None
    """For ``csv``: the label table, a .csv, .tsv or .parquet file with one row per image."""
    image_column: str = "image"
    """For ``csv``: the column naming each image's file, relative to ``path`` (suffix optional)."""
    label_column: str = "label"
    """For ``csv``: the column holding each image's class (one class per image)."""
    split_column: str | None = None
    """For ``csv``: the column holding the user's own split (train / val / test); None lets
    synthdata split by ``split`` below."""
    group_column: str | None = None
    """For ``csv``: patient, lesion or track; images of one group never straddle splits."""
    classes: list[str] | None = None
    """Declared label set, in label order. Built-in sources declare their own; an image or a
    label outside the declared set is an error."""
    channels: Literal[1, 3] | None = field(default=None, metadata={"range": "[1, 3]"})
    """Declared channels; built-in sources declare their own, user data defaults to the first image."""
    image_size: int | None = field(default=None, metadata={"range": "[8, 1024]"})
    """Make every image this square size on ingest (by ``resize``); None keeps the native size,
    which must then be square and the same for every image."""
    resize: Literal["crop", "pad", "squash"] = "crop"
    """How a non-square image becomes square: ``crop`` (shorter side to ``image_size``, centre
    crop), ``pad`` (longer side to ``image_size``, letterboxed with ``pad_fill``) or ``squash``
    (aspect ratio lost). Square images are resized alike by all three."""
    pad_fill: int = field(default=0, metadata={"range": "[0, 255]"})
    """The grey level of the bars ``pad`` adds (0 black, 255 white), in every channel."""
    licence: str | None = None
    """Licence recorded on every manifest row (user data); built-in sources declare their own."""
    split: SplitSettings = field(default_factory=SplitSettings)

    def __post_init__(self) -> None:
        check_numbers(self)
        check_choices(self)
        if self.source in USER_FORMATS and not self.path:
            raise ValueError(f"data.path is required for source '{self.source}'")
        if self.source == "csv" and not self.labels:
            raise ValueError("data.labels (the label table) is required for source 'csv'")
        if self.source != "csv" and self.labels:
            raise ValueError(f"data.labels is read only by source 'csv', not '{self.source}'")
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


@dataclass(frozen=True)
class Resize:
    """How images are made square on ingest (see :func:`synthdata.data.images.fit_square`)."""

    image_size: int | None = None
    """None keeps the native size: every image must then be square and the same size."""
    policy: str = "crop"
    fill: int = 0

    def apply(self, array: np.ndarray, origin: str) -> np.ndarray:
        height, width = array.shape[:2]
        if min(height, width) < MIN_SIDE:
            raise DataError(f"{origin}: image is {width}x{height} pixels, smaller than {MIN_SIDE} px on a side")
        if self.image_size is None:
            if height != width:
                raise DataError(
                    f"{origin}: image is {width}x{height}, not square; set data.image_size and data.resize: "
                    "crop (centre crop) or pad (letterbox) to make it square"
                )
            return array
        return fit_square(array, self.image_size, self.policy, self.fill)

    def card(self, native: Counter[tuple[int, int]]) -> dict[str, Any]:
        """The policy and the native size distribution, as the dataset card records them."""
        widths, heights = [w for w, _ in native], [h for _, h in native]
        common = native.most_common(_SIZES_SHOWN)
        return {
            "image_size": self.image_size,
            "policy": self.policy if self.image_size is not None else "none",
            **({"pad_fill": self.fill} if self.image_size is not None and self.policy == "pad" else {}),
            "native_sizes": {f"{w}x{h}": n for (w, h), n in common},
            "native_sizes_other": sum(native.values()) - sum(n for _, n in common),
            "native_width": [min(widths), max(widths)],
            "native_height": [min(heights), max(heights)],
            "non_square": sum(n for (w, h), n in native.items() if w != h),
        }


_SIZES_SHOWN = 10


@dataclass
class _Decoded:
    images: list[_Image] = field(default_factory=list)
    native_sizes: Counter[tuple[int, int]] = field(default_factory=Counter)
    """(width, height) -> images, before resizing."""


def _decode_all(source: Source, files: dict[str, Path], resize: Resize) -> _Decoded:
    """Every sample decoded, checked and made square. The channel count is the declared one,
    else the first image's; every image must end at the first image's size."""
    declared = source.info.channels
    decoded = _Decoded()
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
            decoded.native_sizes[(array.shape[1], array.shape[0])] += 1
            array = resize.apply(array, raw.origin)
            if decoded.images:
                _check_like_first(array, raw.origin, decoded.images[0])
            png = encode_png(array)
            decoded.images.append(
                _Image(raw.origin, raw.label_name, raw.split, raw.group, png, sha256_bytes(png), array.shape)
            )
            bar.advance()
    if not decoded.images:
        raise DataError(f"{source.where()}: the source holds no images")
    return decoded


def _check_like_first(array: np.ndarray, origin: str, first: _Image) -> None:
    height, width, channels = array.shape
    first_h, first_w, first_c = first.shape
    if channels != first_c:
        # Only without a declared count (a declared one is checked on decoding).
        raise DataError(
            f"{origin}: wrong channel count {channels}; the first image, {first.origin}, has "
            f"{first_c} and so set the dataset's (declare data.channels to choose it)"
        )
    if array.shape != first.shape:
        raise DataError(
            f"{origin}: size {width}x{height}x{channels} differs from the first "
            f"image's ({first.origin}) {first_w}x{first_h}x{first_c} (set data.image_size to resize)"
        )


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
    how = "by group (a track, patient or lesion moves whole)" if grouped else "stratified by class"
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


def ingest(
    source: Source,
    out: Path | str,
    *,
    split: SplitSettings,
    image_size: int | None = None,
    resize: Resize | None = None,
) -> IngestResult:
    """Build ``out`` from ``source``; on any :class:`DataError` nothing is published.

    ``resize`` says how images are made square (``image_size`` alone means the default crop)."""
    out = Path(out)
    resize = resize or Resize(image_size)
    files = source.fetch()
    inputs = source.input_files()
    decoded = _decode_all(source, files, resize)
    classes, images, removed = _kept(source, decoded.images)
    protocol = _assign_splits(images, split, source.where())
    settings = [source.info.name, inputs, vars(split), resize.image_size, created_by()["synthdata"]]
    if resize != Resize(resize.image_size):  # keys of datasets made with the default stay as they were
        settings.append(vars(resize))
    writer = DatasetWriter(out, build_key=hashlib.sha256(json.dumps(settings).encode()).hexdigest())
    frame = _write(writer, images, classes, source, out.name)
    if frame["id"].duplicated().any():
        raise DataError(f"{source.where()}: two different images share a 64-bit id prefix; report this")
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
        resize=resize.card(decoded.native_sizes),
        created_by=created_by(),
    )
    writer.publish(frame, card)
    return IngestResult(out, card.manifest_sha256, counts, removed, len(frame))


def _kept(source: Source, images: list[_Image]) -> tuple[list[str], list[_Image], dict[str, int]]:
    """The classes in label order, the images left after :func:`_deduplicate`, and what it
    removed; a class without images, before or after, is refused."""
    where = source.where()
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
    return classes, images, removed


def _write(writer: DatasetWriter, images: list[_Image], classes: list[str], source: Source, name: str) -> pd.DataFrame:
    """Each image into ``writer`` with its manifest row, in sha256 order; the manifest frame."""
    label_of = {label: index for index, label in enumerate(classes)}
    with progress_bar(f"write {name}", total=len(images)) as bar:
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
    return writer.frame()
