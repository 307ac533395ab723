"""EuroSAT RGB (Helber et al. 2019): Sentinel-2 land cover, 10 classes, 64x64 RGB JPEG.

Split: a widely used fixed train/test split given as CSVs (paths relative to ``EuroSAT_RGB/``);
validation is carved from train. The mirror's zip is a repack of the original JPEG bytes, so
it has no download URL; the upstream release is at the homepage below.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from synthdata.data.archives import FileTree
from synthdata.data.fetch import RemoteFile
from synthdata.data.sources.base import RawSample, Source, SourceInfo
from synthdata.errors import DataError

CLASSES = (
    "AnnualCrop",
    "Forest",
    "HerbaceousVegetation",
    "Highway",
    "Industrial",
    "Pasture",
    "PermanentCrop",
    "Residential",
    "River",
    "SeaLake",
)


class EuroSAT(Source):
    info = SourceInfo(
        name="eurosat",
        description="EuroSAT RGB: Sentinel-2 land-cover patches, 10 classes, 64x64 RGB.",
        homepage="https://github.com/phelber/EuroSAT",
        citation=(
            "Helber et al., EuroSAT: A Novel Dataset and Deep Learning Benchmark for Land Use and "
            "Land Cover Classification, IEEE JSTARS 2019"
        ),
        licence="MIT",
        classes=CLASSES,
        channels=3,
        files=(
            RemoteFile(
                "eurosat/EuroSAT_RGB.zip", "e91dc817f5026a2d937b4ca61bf0011f1a959f0ad098595229237e8039b78d56", None
            ),
            RemoteFile("eurosat/train.csv", "e5086fc1db7ca6bb85fb770cfb15c26a7e56bd945953bd8403038519c178a89e", None),
            RemoteFile("eurosat/test.csv", "88c77e93aae99847ab4b1fb7c3a1abaae0e0e105319c664942236cc33bd61867", None),
            RemoteFile(
                "eurosat/label_map.json", "1ab1df47ca0d0985ed7b73736e050621f3c3804b7b12e2230d5736ba5a64e947", None
            ),
        ),
    )

    def samples(self, files: dict[str, Path]) -> Iterator[RawSample]:
        label_map = json.loads(files["eurosat/label_map.json"].read_text())
        if sorted(label_map, key=label_map.get) != list(CLASSES):
            raise DataError(f"{files['eurosat/label_map.json']}: label map differs from the declared classes")
        with FileTree(files["eurosat/EuroSAT_RGB.zip"]) as tree:
            for split in ("train", "test"):
                table = files[f"eurosat/{split}.csv"]
                for line, row in enumerate(csv.DictReader(io.StringIO(table.read_text())), start=2):
                    name, label = row["Filename"], row["ClassName"]
                    if label not in CLASSES or label_map[label] != int(row["Label"]):
                        raise DataError(
                            f"{table}:{line}: label '{label}' ({row['Label']}) is outside the declared set"
                        )
                    member = PurePosixPath("EuroSAT_RGB") / name
                    try:
                        payload = tree.read(member)
                    except KeyError:
                        raise DataError(f"{table}:{line}: '{member}' is not in {tree.root.name}") from None
                    yield RawSample(tree.origin(member), label, split, None, payload)
