"""MedMNIST v2 PneumoniaMNIST and BreastMNIST (28x28 grey, official train/val/test).

The mirror holds the publisher's own files, byte for byte (their md5s are the ones MedMNIST's
``INFO`` publishes), so the mirror's pins and the download URLs of the MedMNIST v2 Zenodo
record serve both: without a mirror the same bytes are downloaded and checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from synthdata.data.fetch import RemoteFile
from synthdata.data.sources.base import RawSample, Source, SourceInfo
from synthdata.data.sources.readers import npz_samples

_CITATION = (
    "Yang et al., MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D biomedical "
    "image classification, Scientific Data 2023"
)
_RECORD = "https://zenodo.org/records/10519652/files"


class MedMNIST(Source):
    def __init__(self, info: SourceInfo):
        self.info = info

    def samples(self, files: dict[str, Path]) -> Iterator[RawSample]:
        _, samples = npz_samples(files[self.info.files[0].path], self.info.classes)
        return samples


PNEUMONIAMNIST = MedMNIST(
    SourceInfo(
        name="pneumoniamnist",
        description="Paediatric chest X-rays (normal vs pneumonia), MedMNIST v2, 28x28 grey.",
        homepage="https://medmnist.com/",
        citation=_CITATION + "; Kermany et al., Cell 2018",
        licence="CC BY 4.0",
        classes=("normal", "pneumonia"),
        channels=1,
        files=(
            RemoteFile(
                "medmnist/pneumoniamnist.npz",
                "e1792d3f03751cb101e99f19a63b3c1941436c988665f47853417b05be250cd8",
                f"{_RECORD}/pneumoniamnist.npz?download=1",
            ),
        ),
    )
)

BREASTMNIST = MedMNIST(
    SourceInfo(
        name="breastmnist",
        description="Breast ultrasound (malignant vs normal/benign), MedMNIST v2, 28x28 grey.",
        homepage="https://medmnist.com/",
        citation=_CITATION + "; Al-Dhabyani et al., Data in Brief 2020",
        licence="CC BY 4.0",
        classes=("malignant", "benign"),
        channels=1,
        files=(
            RemoteFile(
                "medmnist/breastmnist.npz",
                "3a22d2a4625e7dd8903f0f59030e81a3d0c222bece2e5e10927456cb50efdec1",
                f"{_RECORD}/breastmnist.npz?download=1",
            ),
        ),
    )
)
