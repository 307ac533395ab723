"""PBC peripheral blood cells (Acevedo et al. 2020): 8 classes, no official split.

The mirror holds the 32x32 RGB version (centre 200x200 crop of the 360x363 originals, bicubic
resize), folder per class. Its bytes exist only as that repack, so it has no download URL; the
upstream originals are at the homepage below.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from synthdata.data.archives import FileTree
from synthdata.data.fetch import RemoteFile
from synthdata.data.sources.base import RawSample, Source, SourceInfo
from synthdata.data.sources.readers import class_folder_samples


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
        classes=("basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte", "neutrophil", "platelet"),
        channels=3,
        files=(
            RemoteFile(
                "pbc/pbc-blood-32.zip", "662458bc8bd4448494108637bc755c3ea0994974852dd3cfe3d6c1ee5870c830", None
            ),
        ),
    )

    def samples(self, files: dict[str, Path]) -> Iterator[RawSample]:
        with FileTree(files[self.info.files[0].path]) as tree:
            yield from class_folder_samples(tree, declared=self.info.classes)
