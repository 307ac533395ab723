"""CIFAR-10 (Krizhevsky 2009): the generic corpus the base diffusion model is pretrained on.

Two forms, one dataset folder (10 classes in the publisher's label order, 32x32 RGB, the
official 50,000 train / 10,000 test split, val carved from train):

- the mirror (``SYNTHDATA_DATA_MIRROR``): JPEG files ``train|test/<class>/NNNN.jpg``, re-encoded
  by the copy's author, so lossy and not a reference for published FID numbers; those bytes have
  no download URL.
- without a mirror, the publisher's python tarball, ``cifar-10-batches-py/data_batch_1..5`` and
  ``test_batch``: pickled dicts of a ``(10000, 3072)`` uint8 array (the red, green and blue
  planes of each image, row-major) and its labels, with the class names in ``batches.meta``.
  These are the exact pixels. Pinned to torchvision's md5 and Keras's sha256; read without
  extracting, unpickled by :class:`~synthdata.data.sources.safe_pickle.ArrayUnpickler`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from synthdata.data.archives import FileTree
from synthdata.data.fetch import RemoteFile
from synthdata.data.sources.base import RawSample, Source, SourceInfo
from synthdata.data.sources.readers import class_folder_samples
from synthdata.data.sources.safe_pickle import load_arrays
from synthdata.data.sources.tar_members import tar_files
from synthdata.errors import DataError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TARBALL = "cifar10/cifar-10-python.tar.gz"
_FOLDER = "cifar-10-batches-py"
_BATCHES = {**{f"data_batch_{i}": "train" for i in range(1, 6)}, "test_batch": "test"}
_SIDE = 32


class CIFAR10(Source):
    info = SourceInfo(
        name="cifar10",
        description="CIFAR-10, 10 generic object classes, 32x32 RGB.",
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        citation="Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009",
        licence="free use with citation",
        classes=CLASSES,
        channels=3,
        files=(
            RemoteFile(
                "cifar10/cifar10-jpeg.zip", "d04893ead3171e906e171cb9bc629b66a9d3f5cd36676564a009658746d75a46", None
            ),
        ),
        upstream=(
            RemoteFile(
                TARBALL,
                # Keras (keras.datasets.cifar10) publishes the sha256, torchvision the md5.
                "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                md5="c58f30108f718f92721af3b95e74349a",
            ),
        ),
    )

    def samples(self, files: dict[str, Path]) -> Iterator[RawSample]:
        if not self.reads_mirror(files):
            yield from batch_samples(files[TARBALL])
            return
        with FileTree(files[self.info.files[0].path]) as tree:
            yield from class_folder_samples(tree, declared=self.info.classes)


def batch_samples(tarball: Path) -> Iterator[RawSample]:
    """The images of the python tarball: train batches 1-5, then the test batch, each in order."""
    batches: dict[str, dict] = {}
    meta = None
    for path, data in tar_files(tarball):
        if path.parent.as_posix() != _FOLDER:
            continue
        origin = f"{tarball.name}:{path}"
        if path.name == "batches.meta":
            meta = load_arrays(data, origin)
        elif path.name in _BATCHES:
            batches[path.name] = load_arrays(data, origin)
    absent = [name for name in _BATCHES if name not in batches] + (["batches.meta"] if meta is None else [])
    if absent:
        raise DataError(f"{tarball}: no '{_FOLDER}/{absent[0]}' (not the CIFAR-10 python tarball)")
    names = meta.get("label_names") if isinstance(meta, dict) else None
    if names is None or tuple(names) != CLASSES:
        raise DataError(f"{tarball}: batches.meta label_names {names} differ from CIFAR-10's {list(CLASSES)}")
    for name, split in _BATCHES.items():
        yield from _batch(batches[name], f"{tarball.name}:{_FOLDER}/{name}", split)


def _batch(batch: object, where: str, split: str) -> Iterator[RawSample]:
    """One batch's images as ``(32, 32, 3)`` arrays, with their labels."""
    if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
        raise DataError(f"{where}: not a CIFAR batch (a dict with 'data' and 'labels')")
    data, labels = batch["data"], batch["labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * _SIDE**2:
        raise DataError(f"{where}: 'data' is not a uint8 (N, 3072) array")
    if len(labels) != len(data):
        raise DataError(f"{where}: {len(data)} images but {len(labels)} labels")
    images = data.reshape(-1, 3, _SIDE, _SIDE).transpose(0, 2, 3, 1)
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        if not (isinstance(label, int | np.integer) and 0 <= label < len(CLASSES)):
            raise DataError(f"{where}[{index}]: label {label!r} is not a class index 0..{len(CLASSES) - 1}")
        yield RawSample(f"{where}[{index}]", CLASSES[int(label)], split, None, np.ascontiguousarray(image))
