"""GTSRB (Stallkamp et al. 2012): German traffic signs, 43 classes, naturally long-tailed.

A track is 30 frames of one physical sign, so validation is split by track, never by frame (the
group of a train image is ``<class>/<track>``). Two forms, one kind of dataset folder (43
classes in class-id order, RGB, official train/test, val carved from train by track):

- the mirror (``SYNTHDATA_DATA_MIRROR``) holds whole images resized to 32x32 PNG:
  ``train/<class>/<track>_<frame>.png`` (the first 750 images of each class in track order,
  whole tracks) and ``test/<class>/*.png`` (up to 100 per class from the official test set).
  Those bytes have no download URL.
- without a mirror, the publisher's archives (torchvision's URLs; its md5s, and the sha256s of
  torchvision's prototype datasets): ``GTSRB-Training_fixed.zip`` with
  ``GTSRB/Training/<5-digit class>/<track>_<frame>.ppm`` and a ``GT-<class>.csv`` per class, and
  ``GTSRB_Final_Test_Images.zip`` (``GTSRB/Final_Test/Images/*.ppm``) with the labels of
  ``GTSRB_Final_Test_GT.zip`` (``GT-final_test.csv``). All of it: 39,209 train and 12,630 test
  images, 15x15 to 250x250 and not all square, so the recipe makes them 32x32
  (``data.image_size: 32``, ``data.resize: squash``, which leaves the mirror's unchanged).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from synthdata.data.archives import FileTree
from synthdata.data.fetch import RemoteFile
from synthdata.data.sources.base import RawSample, Source, SourceInfo
from synthdata.data.sources.readers import class_folder_samples
from synthdata.errors import DataError
from synthdata.paths import shown

CLASSES = (
    "speed_limit_20",
    "speed_limit_30",
    "speed_limit_50",
    "speed_limit_60",
    "speed_limit_70",
    "speed_limit_80",
    "end_speed_limit_80",
    "speed_limit_100",
    "speed_limit_120",
    "no_passing",
    "no_passing_over_3_5t",
    "right_of_way_next_intersection",
    "priority_road",
    "yield",
    "stop",
    "no_vehicles",
    "over_3_5t_prohibited",
    "no_entry",
    "general_caution",
    "dangerous_curve_left",
    "dangerous_curve_right",
    "double_curve",
    "bumpy_road",
    "slippery_road",
    "road_narrows_right",
    "road_work",
    "traffic_signals",
    "pedestrians",
    "children_crossing",
    "bicycles_crossing",
    "beware_ice_snow",
    "wild_animals_crossing",
    "end_all_limits",
    "turn_right_ahead",
    "turn_left_ahead",
    "ahead_only",
    "straight_or_right",
    "straight_or_left",
    "keep_right",
    "keep_left",
    "roundabout_mandatory",
    "end_no_passing",
    "end_no_passing_over_3_5t",
)
_ARCHIVES = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370"
TRAIN_ZIP = "gtsrb/GTSRB-Training_fixed.zip"
TEST_ZIP = "gtsrb/GTSRB_Final_Test_Images.zip"
TEST_LABELS_ZIP = "gtsrb/GTSRB_Final_Test_GT.zip"


def _class_of_folder(folder: str) -> str:
    if not (folder.isdigit() and int(folder) < len(CLASSES)):
        raise DataError(f"GTSRB class folder '{folder}' is not a class id 00000..{len(CLASSES) - 1:05d}")
    return CLASSES[int(folder)]


def _track_of(label: str, path: PurePosixPath) -> str | None:
    """Train files are ``<track>_<frame>.png`` (``.ppm`` upstream); the track, within its class,
    is the group."""
    if "train" not in path.parts and "Training" not in path.parts:
        return None
    track, sep, _ = path.stem.partition("_")
    if not sep:
        raise DataError(f"{path}: GTSRB train file name is not <track>_<frame>")
    return f"{label}/{track}"


class GTSRB(Source):
    info = SourceInfo(
        name="gtsrb",
        description="German Traffic Sign Recognition Benchmark, 43 sign classes, 32x32 RGB.",
        homepage="https://benchmark.ini.rub.de/gtsrb_dataset.html",
        citation=(
            "Stallkamp et al., Man vs. computer: Benchmarking machine learning algorithms for "
            "traffic sign recognition, Neural Networks 2012"
        ),
        licence="research use (INI, Ruhr-Universitaet Bochum)",
        classes=CLASSES,
        channels=3,
        files=(
            RemoteFile("gtsrb/gtsrb-32.zip", "a00c21e44ab906234db6f7210d6689b3b45cbb94b5a0713e26d2aa87d8f0e00b", None),
        ),
        upstream=(
            RemoteFile(
                TRAIN_ZIP,
                "df4144942083645bd60b594de348aa6930126c3e0e5de09e39611630abf8455a",
                f"{_ARCHIVES}/GTSRB-Training_fixed.zip",
                md5="513f3c79a4c5141765e10e952eaa2478",
            ),
            RemoteFile(
                TEST_ZIP,
                "48ba6fab7e877eb64eaf8de99035b0aaecfbc279bee23e35deca4ac1d0a837fa",
                f"{_ARCHIVES}/GTSRB_Final_Test_Images.zip",
                md5="c7e4e6327067d32654124b0fe9e82185",
            ),
            RemoteFile(
                TEST_LABELS_ZIP,
                "f94e5a7614d75845c74c04ddb26b8796b9e483f43541dd95dd5b726504e16d6d",
                f"{_ARCHIVES}/GTSRB_Final_Test_GT.zip",
                md5="fe31e9c9270bbcd7b84b7f21a9d9d9e5",
            ),
        ),
    )

    def samples(self, files: dict[str, Path]) -> Iterator[RawSample]:
        if not self.reads_mirror(files):
            yield from training_samples(files[TRAIN_ZIP])
            yield from final_test_samples(files[TEST_ZIP], files[TEST_LABELS_ZIP])
            return
        with FileTree(files[self.info.files[0].path]) as tree:
            yield from class_folder_samples(
                tree, declared=self.info.classes, folder_to_class=_class_of_folder, group_of=_track_of
            )


def _class_ids(table: bytes, where: str) -> dict[str, int]:
    """File name -> ClassId of a GTSRB annotation table (``;``-separated, with a header)."""
    try:
        rows = list(csv.DictReader(io.StringIO(table.decode("utf-8-sig")), delimiter=";"))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{where}: not a readable GTSRB table ({exc})") from None
    if not rows or not {"Filename", "ClassId"} <= set(rows[0]):
        raise DataError(f"{where}: no Filename and ClassId columns")
    ids: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        value = (row["ClassId"] or "").strip()
        if not (value.isdigit() and int(value) < len(CLASSES)):
            raise DataError(f"{where}:{line}: ClassId '{shown(value)}' is not a class id 0..{len(CLASSES) - 1}")
        ids[row["Filename"].strip()] = int(value)
    return ids


def training_samples(archive: Path) -> Iterator[RawSample]:
    """``GTSRB/Training/<class>/<track>_<frame>.ppm``, each checked against its class's table."""
    with FileTree(archive) as tree:
        members = [m for m in tree.files() if m.parts[:2] == ("GTSRB", "Training") and len(m.parts) == 4]
        tables = {m.parent.name: m for m in members if m.name == f"GT-{m.parent.name}.csv"}
        images = [m for m in members if m.suffix.lower() == ".ppm"]
        if not images:
            raise DataError(f"{shown(str(archive))}: no GTSRB/Training/<class>/*.ppm images")
        ids: dict[str, dict[str, int]] = {}
        for image in images:
            folder = image.parent.name
            label = _class_of_folder(folder)
            if folder not in ids:
                if folder not in tables:
                    raise DataError(f"{tree.origin(image)}: its class folder has no GT-{folder}.csv")
                ids[folder] = _class_ids(tree.read(tables[folder]), tree.origin(tables[folder]))
            if ids[folder].get(image.name) != CLASSES.index(label):
                raise DataError(f"{tree.origin(image)}: GT-{folder}.csv does not give it ClassId {int(folder)}")
            yield RawSample(tree.origin(image), label, "train", _track_of(label, image), tree.read(image))


def final_test_samples(archive: Path, labels: Path) -> Iterator[RawSample]:
    """``GTSRB/Final_Test/Images/*.ppm`` with their ClassId from ``GT-final_test.csv``."""
    with FileTree(labels) as tree:
        tables = [m for m in tree.files() if m.name == "GT-final_test.csv"]
        if len(tables) != 1:
            raise DataError(f"{shown(str(labels))}: expected one GT-final_test.csv, found {len(tables)}")
        ids = _class_ids(tree.read(tables[0]), tree.origin(tables[0]))
    with FileTree(archive) as tree:
        images = [
            m for m in tree.files() if m.parts[:3] == ("GTSRB", "Final_Test", "Images") and m.suffix.lower() == ".ppm"
        ]
        if len(images) != len(ids):
            raise DataError(
                f"{shown(str(archive))}: {len(images)} test images but {len(ids)} rows in GT-final_test.csv"
            )
        for image in images:
            if image.name not in ids:
                raise DataError(f"{tree.origin(image)}: no row in GT-final_test.csv")
            yield RawSample(tree.origin(image), CLASSES[ids[image.name]], "test", None, tree.read(image))
