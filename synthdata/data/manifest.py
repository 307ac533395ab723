"""The manifest: one row per image of a dataset, stored as ``manifest.parquet``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from synthdata.atomic import commit
from synthdata.errors import DataError

MANIFEST_FILE = "manifest.parquet"
SPLITS = ("train", "val", "test")

# Column -> pandas dtype. The first eleven are the canonical columns every dataset (real or
# synthetic) carries; ``origin`` names the file in the source it came from and ``group`` keeps
# samples that must share a split together (a GTSRB track), empty when there is none.
COLUMNS: dict[str, str] = {
    "id": "string",
    "relpath": "string",
    "label": "int64",
    "label_name": "string",
    "split": "string",
    "sha256": "string",
    "width": "int64",
    "height": "int64",
    "channels": "int64",
    "source": "string",
    "licence": "string",
    "origin": "string",
    "group": "string",
}

# A synthetic set (``source == SYNTHETIC_SOURCE``) carries the canonical columns and these
# provenance columns: what made each image, from what, with which settings.
SYNTHETIC_SOURCE = "synthdata"
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
"""The IPTC digital source type of an image made by a model trained on sampled content (C2PA)."""
PROVENANCE_COLUMNS: dict[str, str] = {
    "digital_source_type": "string",
    "base_id": "string",
    "base_sha256": "string",
    "adapter_sha256": "string",
    "sample_run_id": "string",
    "sample_index": "int64",
    "seed": "int64",
    "scheduler": "string",
    "steps": "int64",
    "guidance": "float64",
    "synthdata_version": "string",
    "git_commit": "string",
    "source_manifest_sha256": "string",
}
# No MLflow run id per image: it differs between two runs of the same recipe and seeds, and the
# images must not. The run is the one tagged ``sample_run_id``; ``sample.json`` names it too.


def to_frame(rows: list[dict], *, synthetic: bool = False) -> pd.DataFrame:
    """Rows -> a manifest frame with the canonical column order and dtypes, sorted by id
    (with the provenance columns after them for a synthetic set)."""
    schema = {**COLUMNS, **PROVENANCE_COLUMNS} if synthetic else COLUMNS
    frame = pd.DataFrame(rows, columns=list(schema))
    frame = frame.astype(schema)
    return frame.sort_values("id", kind="stable").reset_index(drop=True)


def manifest_hash(frame: pd.DataFrame) -> str:
    """sha256 of the manifest's content, independent of the parquet writer's byte layout.

    Canonical columns first, then any further (provenance) columns in schema order."""
    extra = [c for c in PROVENANCE_COLUMNS if c in frame.columns]
    ordered = frame[list(COLUMNS) + extra].sort_values("id", kind="stable")
    return hashlib.sha256(ordered.to_csv(index=False, lineterminator="\n").encode()).hexdigest()


def write_manifest(frame: pd.DataFrame, folder: Path) -> Path:
    """Write ``manifest.parquet`` atomically (temp name, then rename)."""
    target = folder / MANIFEST_FILE
    partial = folder / f".{MANIFEST_FILE}.part"
    frame.to_parquet(partial, index=False)
    commit(partial, target)
    return target


def read_manifest(folder: Path | str) -> pd.DataFrame:
    """Read a dataset's manifest; a missing or unreadable one is a :class:`DataError`."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise DataError(f"{path}: no manifest (is this a synthdata dataset folder?)")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise DataError(f"{path}: unreadable manifest ({exc})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: manifest lacks columns {missing}")
    return frame


def class_counts(frame: pd.DataFrame, split: str) -> dict[str, int]:
    """Images per class name in one split."""
    counts = frame.loc[frame["split"] == split, "label_name"].value_counts()
    return {str(k): int(v) for k, v in counts.items()}
