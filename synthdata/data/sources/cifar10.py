"""CIFAR-10 (Krizhevsky 2009): the generic corpus the base diffusion model is pretrained on.

The mirror holds it as JPEG files (``train|test/<class>/NNNN.jpg``), re-encoded by the copy's
author, so it is not a reference for published FID numbers. Those bytes have no download URL;
the official release is at the homepage below.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from synthdata.data.archives import FileTree
from synthdata.data.fetch import RemoteFile
from synthdata.data.sources.base import RawSample, Source, SourceInfo
from synthdata.data.sources.readers import class_folder_samples


class CIFAR10(Source):
    info = SourceInfo(
        name="cifar10",
        description="CIFAR-10, 10 generic object classes, 32x32 RGB (JPEG re-encoded copy).",
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        citation="Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009",
        licence="free use with citation",
        classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        channels=3,
        files=(
            RemoteFile(
                "cifar10/cifar10-jpeg.zip", "d04893ead3171e906e171cb9bc629b66a9d3f5cd36676564a009658746d75a46", None
            ),
        ),
    )

    def samples(self, files: dict[str, Path]) -> Iterator[RawSample]:
        with FileTree(files[self.info.files[0].path]) as tree:
            yield from class_folder_samples(tree, declared=self.info.classes)
