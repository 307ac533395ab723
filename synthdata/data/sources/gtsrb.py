"""GTSRB (Stallkamp et al. 2012): German traffic signs, 43 classes, naturally long-tailed.

The mirror holds whole images resized to 32x32 PNG: ``train/<class>/<track>_<frame>.png`` (the
first 750 images of each class in track order, whole 30-frame tracks) and ``test/<class>/*.png``
(up to 100 per class from the official test set). A track is 30 frames of one physical sign,
so validation is split by track, never by frame. Those bytes have no download URL; the
official release is at the homepage below.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from synthdata.data.archives import FileTree
from synthdata.data.fetch import RemoteFile
from synthdata.data.sources.base import RawSample, Source, SourceInfo
from synthdata.data.sources.readers import class_folder_samples
from synthdata.errors import DataError

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


def _class_of_folder(folder: str) -> str:
    if not (folder.isdigit() and int(folder) < len(CLASSES)):
        raise DataError(f"GTSRB class folder '{folder}' is not a class id 00000..{len(CLASSES) - 1:05d}")
    return CLASSES[int(folder)]


def _track_of(label: str, path: PurePosixPath) -> str | None:
    """Train files are ``<track>_<frame>.png``; the track, within its class, is the group."""
    if "train" not in path.parts:
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
    )

    def samples(self, files: dict[str, Path]) -> Iterator[RawSample]:
        with FileTree(files[self.info.files[0].path]) as tree:
            yield from class_folder_samples(
                tree, declared=self.info.classes, folder_to_class=_class_of_folder, group_of=_track_of
            )
