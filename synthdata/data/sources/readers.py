"""Readers shared by built-in and user sources: class-folder trees and MedMNIST-style npz."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from synthdata.data.archives import FileTree
from synthdata.data.sources.base import RawSample
from synthdata.errors import DataError
from synthdata.paths import shown

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".webp", ".gif"}
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
NPZ_SPLITS = ("train", "val", "test")

GroupOf = Callable[[str, PurePosixPath], str | None]


def _strip_common_root(paths: Sequence[PurePosixPath]) -> int:
    """Number of leading folders shared by every path that are not part of the layout."""
    depth = 0
    while True:
        heads = {p.parts[depth] for p in paths if len(p.parts) > depth + 2}
        deeper = all(len(p.parts) > depth + 2 for p in paths)
        if len(heads) == 1 and deeper and next(iter(heads)).lower() not in SPLIT_ALIASES:
            depth += 1
        else:
            return depth


def class_folder_samples(
    tree: FileTree,
    *,
    declared: Sequence[str] | None,
    folder_to_class: Callable[[str], str] | None = None,
    group_of: GroupOf | None = None,
) -> Iterator[RawSample]:
    """Samples of ``[root/][split/]class/file`` trees (ImageFolder, with or without splits).

    Hidden files and files that are not images by suffix are skipped; a class folder outside
    the ``declared`` set is an error naming it.
    """
    paths = [p for p in tree.files() if not any(part.startswith(".") for part in p.parts)]
    paths = [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES]
    if not paths:
        raise DataError(f"{shown(str(tree.root))}: no image files found")
    skip = _strip_common_root(paths)
    with_split = all(len(p.parts) - skip >= 3 and p.parts[skip].lower() in SPLIT_ALIASES for p in paths)
    for path in paths:
        parts = path.parts[skip:]
        if with_split:
            split, folder = SPLIT_ALIASES[parts[0].lower()], parts[1]
        elif len(parts) == 2:
            split, folder = None, parts[0]
        else:
            raise DataError(f"{tree.origin(path)}: not in a class folder ([split/]class/image layout expected)")
        label = folder_to_class(folder) if folder_to_class else folder
        if declared is not None and label not in declared:
            raise DataError(
                f"{tree.origin(path)}: label '{shown(label)}' is outside the declared set {list(declared)}"
            )
        group = group_of(label, path) if group_of else None
        yield RawSample(tree.origin(path), label, split, group, tree.read(path))


def npz_samples(path: Path, classes: Sequence[str] | None) -> tuple[list[str], Iterator[RawSample]]:
    """Declared classes and the samples of a MedMNIST-style ``.npz``.

    Keys ``<split>_images`` (shape ``(N, H, W)`` or ``(N, H, W, C)``) and ``<split>_labels``
    for split in train/val/test; labels are integers (shape ``(N,)`` or ``(N, 1)``). Pickled
    object arrays and a file without images are refused. Undeclared classes are named
    ``class_<label>``, and every label from 0 to the largest must have images, so that the
    file's integers stay the dataset's labels.
    """
    where = shown(str(path))
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{where}: not a readable .npz ({exc})") from None
    with archive:
        present = [s for s in NPZ_SPLITS if f"{s}_images" in archive.files]
        if not present:
            raise DataError(f"{where}: no '<split>_images' arrays (expected train_images, val_images, test_images)")
        arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for split in present:
            if f"{split}_labels" not in archive.files:
                raise DataError(f"{where}: '{split}_images' has no '{split}_labels'")
            try:
                images, labels = archive[f"{split}_images"], archive[f"{split}_labels"]
            except ValueError as exc:
                raise DataError(f"{where}: '{split}' arrays cannot be loaded without pickle ({exc})") from None
            if images.ndim not in (3, 4):
                raise DataError(
                    f"{where}: '{split}_images' has shape {images.shape}; expected (N, H, W) or (N, H, W, C)"
                )
            if labels.ndim == 2 and labels.shape[1] == 1:
                labels = labels[:, 0]
            if labels.ndim != 1 or labels.dtype.kind not in "iu":
                raise DataError(f"{where}: '{split}_labels' must be integer class indices of shape (N,) or (N, 1)")
            if len(labels) != len(images):
                raise DataError(f"{where}: {len(images)} {split} images but {len(labels)} labels")
            arrays[split] = (images, labels)
    found = {int(label) for _, labels in arrays.values() for label in np.unique(labels)}
    if not found:
        raise DataError(f"{where}: holds no images (every '<split>_images' array is empty)")
    if classes is not None:
        names = list(classes)
    else:
        missing = sorted(set(range(max(found) + 1)) - found)
        if missing or min(found) < 0:
            gap = f"no images with label {missing[0]}" if missing else f"label {min(found)} is negative"
            raise DataError(f"{where}: {gap}; labels are class indices 0..N-1, and each needs images")
        names = [f"class_{i}" for i in range(max(found) + 1)]

    def generate() -> Iterator[RawSample]:
        for split, (images, labels) in arrays.items():
            for index, (image, label) in enumerate(zip(images, labels, strict=True)):
                origin = f"{shown(path.name)}:{split}[{index}]"
                if not 0 <= int(label) < len(names):
                    raise DataError(f"{origin}: label {int(label)} is outside the declared set 0..{len(names) - 1}")
                yield RawSample(origin, names[int(label)], split, None, image)

    return names, generate()
