"""PBC peripheral blood cells (Acevedo et al. 2020): 8 classes, no official split.

Two forms, one kind of dataset folder (8 classes, 32x32 RGB: the centre 200x200 of each
original, bicubic resize to 32; split stratified by class, seeded):

- the mirror (``SYNTHDATA_DATA_MIRROR``) holds that 32x32 version (17,092 PNGs, folder per
  class); its bytes exist only as that repack, so it has no download URL.
- without a mirror, the publisher's ``PBC_dataset_normal_DIB.zip`` from Mendeley Data
  (doi 10.17632/snkd93bnjr.1): ``PBC_dataset_normal_DIB/<class>/*.jpg``, 360x363 JPEGs, which the
  reader converts the same way as the mirror was made. **No checksum of that zip is published**
  by its authors or by a kept library (MedMNIST's BloodMNIST, torchvision and torchgeo pin only
  their own derived files; searched for this reader), so it is not downloaded unverified: the
  user checks a copy and gives its sha256 in ``SYNTHDATA_PBC_SHA256``, which pins the download
  (and is recorded on the card as the user's pin); without it the fetch is refused, saying so.
  The centre crop starts at ``((height - 200) // 2, (width - 200) // 2)``; the mirror's README
  does not say how its crop rounded, so an image may differ from the mirror's by a pixel's shift.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from synthdata.data.archives import FileTree
from synthdata.data.fetch import RemoteFile
from synthdata.data.images import decode_image, resize
from synthdata.data.sources.base import RawSample, Source, SourceInfo
from synthdata.data.sources.readers import class_folder_samples
from synthdata.errors import DataError
from synthdata.paths import shown

CLASSES = ("basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte", "neutrophil", "platelet")
ZIP = "pbc/PBC_dataset_normal_DIB.zip"
PIN_ENV = "SYNTHDATA_PBC_SHA256"
_FOLDER = "PBC_dataset_normal_DIB"
CROP, SIDE = 200, 32
"""The mirror's conversion: the centre 200x200 of each original, then bicubic to 32x32."""


class PBC(Source):
    info = SourceInfo(
        name="pbc",
        description=(
            "Peripheral blood cell microscopy (Hospital Clinic of Barcelona), 8 cell types, "
            "32x32 RGB: centre 200x200 crop of the 360x363 originals, bicubic resize."
        ),
        homepage="https://data.mendeley.com/datasets/snkd93bnjr/1",
        citation=(
            "Acevedo et al., A dataset of microscopic peripheral blood cell images for development "
            "of automatic recognition systems, Data in Brief 2020"
        ),
        licence="CC BY 4.0",
        classes=CLASSES,
        channels=3,
        files=(
            RemoteFile(
                "pbc/pbc-blood-32.zip", "662458bc8bd4448494108637bc755c3ea0994974852dd3cfe3d6c1ee5870c830", None
            ),
        ),
        upstream=(
            RemoteFile(
                ZIP,
                None,
                "https://data.mendeley.com/public-files/datasets/snkd93bnjr/files/"
                "2fc38728-2ae7-4a62-a857-032af82334c3/file_downloaded",
                pin_env=PIN_ENV,
            ),
        ),
    )

    def samples(self, files: dict[str, Path]) -> Iterator[RawSample]:
        if not self.reads_mirror(files):
            yield from original_samples(files[ZIP])
            return
        with FileTree(files[self.info.files[0].path]) as tree:
            yield from class_folder_samples(tree, declared=self.info.classes)


def original_samples(archive: Path) -> Iterator[RawSample]:
    """``PBC_dataset_normal_DIB/<class>/*.jpg`` converted as the mirror was (see :func:`to_mirror_form`);
    macOS metadata (``__MACOSX/``, ``._*``) and other hidden files are skipped."""
    with FileTree(archive) as tree:
        found = False
        for member in tree.files():
            if member.parts[0] == "__MACOSX" or any(part.startswith(".") for part in member.parts):
                continue
            if member.suffix.lower() not in (".jpg", ".jpeg"):
                continue
            if len(member.parts) != 3 or member.parts[0] != _FOLDER or member.parts[1] not in CLASSES:
                raise DataError(f"{tree.origin(member)}: not a {_FOLDER}/<class>/<image>.jpg of the declared classes")
            found = True
            origin = tree.origin(member)
            image = to_mirror_form(decode_image(tree.read(member), origin, channels=3), origin)
            yield RawSample(origin, member.parts[1], None, None, image)
        if not found:
            raise DataError(f"{shown(str(archive))}: no {_FOLDER}/<class>/*.jpg images")


def to_mirror_form(image: np.ndarray, origin: str) -> np.ndarray:
    """The centre :data:`CROP` x :data:`CROP` of ``image``, resized (bicubic) to :data:`SIDE`."""
    height, width = image.shape[:2]
    if min(height, width) < CROP:
        raise DataError(f"{origin}: image is {width}x{height}, smaller than the {CROP}x{CROP} centre crop")
    top, left = (height - CROP) // 2, (width - CROP) // 2
    return resize(np.ascontiguousarray(image[top : top + CROP, left : left + CROP]), SIDE)
