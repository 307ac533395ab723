"""The manifest: one row per image of a dataset, stored as ``manifest.parquet``.

Every stage that reads a dataset takes it from :func:`verify_dataset`, which checks what is
there against what was recorded: the manifest against its card, each file against its row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from synthdata.atomic import commit
from synthdata.data.card import DatasetCard, read_card
from synthdata.errors import DataError
from synthdata.hashing import file_sha256
from synthdata.progress import progress_bar

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
DERIVED_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
"""The IPTC digital source type of an image a model made from real ones (``img2img``, ``interpolate``)."""


GenerationMode = Literal["noise", "img2img", "interpolate"]
"""How a synthetic image was made (its ``mode`` column, ``sample.mode`` in a recipe): from pure
noise, or from one or two real train images (``synthdata.sampling.anchors``)."""


def source_type(mode: str) -> str:
    """The IPTC digital source type of an image made in generation ``mode``."""
    return DIGITAL_SOURCE_TYPE if mode == "noise" else DERIVED_SOURCE_TYPE


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
    # Lineage: how the image was made and from which real train image(s) of the source dataset
    # (ids joined by ";", empty in noise mode); strength 1 and weight 0 when there is no source.
    "mode": "string",
    "strength": "float64",
    "source_ids": "string",
    "interpolation_weight": "float64",
}
# A person's review of a synthetic set (``synthdata review --apply``): each kept image's decision
# (accept, skip, or unreviewed when the reviewer did not reach it), who reviewed the set and when
# the decision was made (empty for unreviewed images). Rejected images are not in the reviewed set.
REVIEW_COLUMNS: dict[str, str] = {"review_decision": "string", "reviewer": "string", "reviewed_at": "string"}
KEPT_DECISIONS = ("accept", "skip", "unreviewed")
# No MLflow run id per image: it differs between two runs of the same recipe and seeds, and the
# images must not. The run is the one tagged ``sample_run_id``; ``sample.json`` names it too.


def to_frame(rows: list[dict], *, synthetic: bool = False, reviewed: bool = False) -> pd.DataFrame:
    """Rows -> a manifest frame with the canonical column order and dtypes, sorted by id
    (with the provenance columns after them for a synthetic set, then the review columns for a
    reviewed one)."""
    schema = {**COLUMNS, **PROVENANCE_COLUMNS} if synthetic else COLUMNS
    if reviewed:
        schema = {**schema, **REVIEW_COLUMNS}
    frame = pd.DataFrame(rows, columns=list(schema))
    frame = frame.astype(schema)
    return frame.sort_values("id", kind="stable").reset_index(drop=True)


def manifest_hash(frame: pd.DataFrame) -> str:
    """sha256 of the manifest's content, independent of the parquet writer's byte layout.

    Canonical columns first, then any further (provenance, review) columns in schema order."""
    extra = [c for c in {**PROVENANCE_COLUMNS, **REVIEW_COLUMNS} if c in frame.columns]
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


_SHOWN_ROWS = 5


def first_rows(items: list[str]) -> str:
    """The first few of ``items`` and how many more, for an error line."""
    more = f" and {len(items) - _SHOWN_ROWS} more" if len(items) > _SHOWN_ROWS else ""
    return ", ".join(items[:_SHOWN_ROWS]) + more


def check_files(frame: pd.DataFrame, root: Path) -> list[str]:
    """Rows whose file is missing, outside ``root``, or differs from its sha256."""
    root = Path(root).resolve()
    bad = []
    with progress_bar(f"hash {root.name}", total=len(frame)) as bar:
        for row in frame[["id", "relpath", "sha256"]].itertuples(index=False):
            path = (root / row.relpath).resolve()
            if not path.is_relative_to(root):
                bad.append(f"{row.id} ({row.relpath}: leaves the dataset folder)")
            elif not path.is_file():
                bad.append(f"{row.id} ({row.relpath}: missing)")
            elif file_sha256(path) != row.sha256:
                bad.append(f"{row.id} ({row.relpath}: sha256 differs)")
            bar.advance()
    return bad


@dataclass(frozen=True)
class VerifiedDataset:
    """A dataset folder whose files, manifest and card agree (see :func:`verify_dataset`)."""

    frame: pd.DataFrame
    card: DatasetCard
    manifest_sha256: str
    """The content hash of the manifest as read, equal to the one the card records: the identity
    of the data a stage used, from which run ids and fingerprints are derived."""


def verify_dataset(folder: Path | str) -> VerifiedDataset:
    """The manifest and card of ``folder``, once what they say has been checked against what is there.

    Each row's file lies inside the folder and has the row's sha256 (a file swapped, damaged or
    gone); each row's label and name are a pair the card declares; the manifest's content hash is
    the one the card records (a row removed, added or edited, a label flipped). The first problem
    found is one :class:`DataError` naming the file.
    """
    folder = Path(folder)
    frame, card = read_manifest(folder), read_card(folder)
    path = folder / MANIFEST_FILE
    bad = check_files(frame, folder)
    if bad:
        raise DataError(f"{path}: file check failed for rows {first_rows(bad)}")
    declared = dict(enumerate(card.classes))
    wrong = frame["label"].map(declared) != frame["label_name"]
    if wrong.any():
        rows = [f"{r.id} ({r.label} {r.label_name!r})" for r in frame[wrong].itertuples()]
        raise DataError(
            f"{path}: rows {first_rows(rows)}: label and name do not match card.json's classes {card.classes}"
        )
    actual = manifest_hash(frame)
    if actual != card.manifest_sha256:
        raise DataError(
            f"{path}: its content (sha256 {actual[:16]}…) is not the manifest card.json records "
            f"({card.manifest_sha256[:16]}…): rows were added, removed or edited after the dataset was written"
        )
    return VerifiedDataset(frame, card, actual)
