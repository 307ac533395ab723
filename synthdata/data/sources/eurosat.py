"""EuroSAT RGB (Helber et al. 2019): Sentinel-2 land cover, 10 classes, 64x64 RGB JPEG.

Two forms, one kind of dataset folder (the same classes in the same label order, the original
JPEG bytes, 64x64 RGB):

- the mirror (``SYNTHDATA_DATA_MIRROR``): a repack of 21,600 of the original JPEGs with a widely
  used fixed train/test split given as CSVs (paths relative to ``EuroSAT_RGB/``; 18,900 / 2,700);
  validation is carved from train. Those bytes have no download URL.
- without a mirror, the publisher's ``EuroSAT.zip`` (all 27,000 images, ``2750/<Class>/<Class>_<n>.jpg``;
  torchgeo's copy on Hugging Face, pinned to torchvision's md5 and sha256) with the official
  split of Neumann et al. 2019 ("In-domain representation learning for remote sensing"), the
  split torchgeo uses: ``eurosat-{train,val,test}.txt`` (16,200 / 5,400 / 5,400 file names),
  pinned to torchgeo's published md5s and sha256s. Its val split is used as given.
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
from synthdata.paths import shown

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
ZIP = "eurosat/EuroSAT.zip"
_SPLITS = "https://hf.co/datasets/torchgeo/eurosat/resolve/1ce6f1bfb56db63fd91b6ecc466ea67f2509774c"
# torchgeo's EuroSAT: split_md5s, and split_sha256s in its later releases.
_SPLIT_PINS = {
    "train": ("1c1d2e855f95deee605a3d992f914d113fddbecf422ec61648057d029a37d695", "908f142e73d6acdf3f482c5e80d851b1"),
    "val": ("b385741f31daa9f1250cf1e1fe03adfab394e1172e0693df40141af004f60330", "95de90f2aa998f70a3b2416bfe0687b4"),
    "test": ("cf37948894c12bd953930ff54ee9b7abf0b31478abb8d25fd2c6c721db74c592", "7ae5ab94471417b6e315763121e67c5f"),
}


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
        upstream=(
            RemoteFile(
                ZIP,
                # torchvision.datasets.EuroSAT publishes the md5, its prototype datasets the sha256.
                "8ebea626349354c5328b142b96d0430e647051f26efc2dc974c843f25ecf70bd",
                "https://huggingface.co/datasets/torchgeo/eurosat/resolve/c877bcd43f099cd0196738f714544e355477f3fd/EuroSAT.zip",
                md5="c8fa014336c82ac7804f0398fcb19387",
            ),
            *(
                RemoteFile(f"eurosat/eurosat-{split}.txt", sha256, f"{_SPLITS}/eurosat-{split}.txt", md5=md5)
                for split, (sha256, md5) in _SPLIT_PINS.items()
            ),
        ),
    )

    def samples(self, files: dict[str, Path]) -> Iterator[RawSample]:
        if self.reads_mirror(files):
            yield from self._mirror_samples(files)
        else:
            yield from upstream_samples(files)

    def _mirror_samples(self, files: dict[str, Path]) -> Iterator[RawSample]:
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


def upstream_samples(files: dict[str, Path]) -> Iterator[RawSample]:
    """The images of ``EuroSAT.zip``, each in the split whose list names it; an image no list
    names, or two lists name, and a listed name with no image are refused."""
    split_of = _split_lists({split: files[f"eurosat/eurosat-{split}.txt"] for split in _SPLIT_PINS})
    with FileTree(files[ZIP]) as tree:
        found: set[str] = set()
        for member in tree.files():
            if member.suffix.lower() != ".jpg" or any(part.startswith(".") for part in member.parts):
                continue
            if len(member.parts) != 3 or member.parts[0] != "2750" or member.parts[1] not in CLASSES:
                raise DataError(f"{tree.origin(member)}: not a 2750/<class>/<image>.jpg of the declared classes")
            if member.name not in split_of:
                raise DataError(f"{tree.origin(member)}: named in none of the split lists")
            found.add(member.name)
            yield RawSample(tree.origin(member), member.parts[1], split_of[member.name], None, tree.read(member))
    unmatched = sorted(set(split_of) - found)
    if unmatched:
        raise DataError(
            f"{shown(str(files[ZIP]))}: {len(unmatched)} image(s) of the split lists are missing (first: {unmatched[0]})"
        )


def _split_lists(lists: dict[str, Path]) -> dict[str, str]:
    """File name -> split, from one list of file names per split."""
    split_of: dict[str, str] = {}
    for split, path in lists.items():
        for line, text in enumerate(path.read_text().splitlines(), start=1):
            name = PurePosixPath(text.strip()).name
            if not name:
                continue
            if name in split_of:
                raise DataError(f"{shown(str(path))}:{line}: '{shown(name)}' is already in the {split_of[name]} list")
            split_of[name] = split
    return split_of
