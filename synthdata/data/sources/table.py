"""A user's images with their labels in a table: an image folder or zip plus a CSV or parquet file.

This is how medical, satellite and driving sets usually come (HAM10000's ``image_id,dx,lesion_id``,
EuroSAT's split CSVs, GTSRB's per-class CSVs): one row per image names its file, its label and,
optionally, the user's own split and a group (patient, lesion, track) whose images must never
straddle splits. The table and the folder must agree exactly; each disagreement is refused with
the row or file it concerns: a row whose image is missing, an image no row names, two rows for one
image, an empty or undeclared label, an unknown split, a group in two of the user's splits.

A multi-label table (one 0/1 column per finding, CheXpert style) is refused: a dataset here has
one class per image, which is what class-balanced generation and per-class recall rest on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from synthdata.data.archives import FileTree
from synthdata.data.sources.base import RawSample, Source, SourceInfo
from synthdata.data.sources.readers import IMAGE_SUFFIXES, SPLIT_ALIASES
from synthdata.errors import DataError
from synthdata.hashing import file_sha256
from synthdata.paths import shown

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
# Values a one-column-per-finding table holds (CheXpert: 1 positive, 0 negative, -1 uncertain,
# blank unmentioned); two or more such columns and no label column read as multi-label.
_FINDING_VALUES = {"", "0", "1", "-1", "0.0", "1.0", "-1.0"}


@dataclass(frozen=True)
class TableColumns:
    """Which columns of the table hold what."""

    image: str = "image"
    """The image's file, relative to the image folder or zip; the suffix may be left out."""
    label: str = "label"
    split: str | None = None
    """The user's own split (train / val / test, or valid / validation); None lets synthdata split."""
    group: str | None = None
    """Patient, lesion or track: images of one group always land in one split."""


@dataclass(frozen=True)
class _Row:
    where: str
    image: str
    label: str
    split: str | None
    group: str | None


def read_table(path: Path, columns: TableColumns) -> list[_Row]:
    """The rows of the CSV, TSV or parquet file at ``path``, checked cell by cell."""
    frame = _load(path)
    wanted = [c for c in (columns.image, columns.label, columns.split, columns.group) if c is not None]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(_missing_columns(path, frame, missing, columns))
    if frame.empty:
        raise DataError(f"{shown(str(path))}: the table has no rows")
    parquet = TABLE_SUFFIXES[path.suffix.lower()] == "parquet"
    rows = []
    for index, record in enumerate(frame[wanted].itertuples(index=False, name=None)):
        # CSV lines count from the header (line 1); parquet rows from 0, as pandas shows them
        where = f"{shown(str(path))}:{'row ' if parquet else ''}{index if parquet else index + 2}"
        cells = dict(zip(wanted, (str(value).strip() for value in record), strict=True))
        rows.append(_row(where, cells, columns))
    _check_unique(rows)
    _check_groups(rows)
    return rows


def _load(path: Path) -> pd.DataFrame:
    where = shown(str(path))
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{where}: not a label table (give a .csv, .tsv or .parquet file)")
    if not path.is_file():
        raise DataError(f"{where}: no such label table")
    try:
        if kind == "parquet":
            return pd.read_parquet(path).astype(str).replace({"None": "", "nan": "", "<NA>": ""})
        # every cell as text: ids such as 007 keep their zeros, and no cell becomes NaN
        return pd.read_csv(path, sep="\t" if kind == "tsv" else ",", dtype=str, keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"{where}: not a readable {kind} table ({str(exc).splitlines()[0]})") from None


def _missing_columns(path: Path, frame: pd.DataFrame, missing: list[str], columns: TableColumns) -> str:
    where, present = shown(str(path)), ", ".join(shown(str(c)) for c in frame.columns)
    findings = [c for c in frame.columns if c != columns.image and set(frame[c].astype(str)) <= _FINDING_VALUES]
    if columns.label in missing and len(findings) >= 2:
        return (
            f"{where}: no column '{shown(columns.label)}' and {len(findings)} columns of 0/1 findings "
            f"({', '.join(shown(str(c)) for c in findings[:4])}...): multi-label tables are not supported; "
            "give one class per image in one column (data.label_column)"
        )
    names = ", ".join(f"'{shown(c)}'" for c in missing)
    return f"{where}: no column {names} (the table has: {present}); set data.image_column / data.label_column"


def _row(where: str, cells: dict[str, str], columns: TableColumns) -> _Row:
    image, label = cells[columns.image], cells[columns.label]
    if not image:
        raise DataError(f"{where}: empty '{shown(columns.image)}' cell")
    if not label:
        raise DataError(f"{where}: image '{shown(image)}' has an empty '{shown(columns.label)}' cell")
    normalised = image.replace("\\", "/")
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        raise DataError(f"{where}: image '{shown(image)}' is an absolute path; name it relative to data.path")
    if ".." in PurePosixPath(normalised).parts:
        raise DataError(f"{where}: image '{shown(image)}' leaves the image folder with '..'")
    split = None
    if columns.split is not None:
        given = cells[columns.split]
        if given.lower() not in SPLIT_ALIASES:
            allowed = ", ".join(sorted(SPLIT_ALIASES))
            raise DataError(f"{where}: split '{shown(given)}' is not one of {allowed}")
        split = SPLIT_ALIASES[given.lower()]
    group = (cells[columns.group] or None) if columns.group is not None else None
    return _Row(where, normalised, label, split, group)


def _check_unique(rows: Sequence[_Row]) -> None:
    first: dict[str, str] = {}
    for row in rows:
        if row.image in first:
            raise DataError(f"{row.where}: image '{shown(row.image)}' has a second row (first at {first[row.image]})")
        first[row.image] = row.where


def _check_groups(rows: Sequence[_Row]) -> None:
    """A group the user put in two splits is a leak the user made; refused, never repaired."""
    splits: dict[str, dict[str | None, str]] = defaultdict(dict)
    for row in rows:
        if row.group is None:
            continue
        seen = splits[row.group]
        seen.setdefault(row.split, row.where)
        if len(seen) > 1:
            (other, at), *_ = ((s, w) for s, w in seen.items() if s != row.split)
            raise DataError(
                f"{row.where}: group '{shown(row.group)}' is in split {row.split} here and in {other} at {at}; "
                "a group's images must share one split"
            )


class _ImageIndex:
    """Finds a row's image in the tree: by its path, or by its path or file name without suffix."""

    def __init__(self, tree: FileTree):
        self.tree = tree
        self.files = [
            p
            for p in tree.files()
            if p.suffix.lower() in IMAGE_SUFFIXES and not any(part.startswith(".") for part in p.parts)
        ]
        self.by_key: dict[str, list[PurePosixPath]] = defaultdict(list)
        for path in self.files:
            for key in {str(path), str(path.with_suffix("")), path.name, path.stem}:
                self.by_key[key].append(path)

    def find(self, row: _Row) -> PurePosixPath:
        found = self.by_key.get(row.image, [])
        if not found:
            raise DataError(f"{row.where}: image '{shown(row.image)}' is not in {shown(str(self.tree.root))}")
        if len(found) > 1:
            names = ", ".join(shown(str(p)) for p in found[:3])
            raise DataError(f"{row.where}: image '{shown(row.image)}' matches several files ({names}); give its path")
        return found[0]


class TableSource(Source):
    """Images in ``path`` (a folder or zip), labels in the table ``labels``."""

    def __init__(
        self,
        path: Path | str,
        labels: Path | str,
        columns: TableColumns,
        *,
        name: str,
        classes: Sequence[str] | None = None,
        channels: int | None = None,
        licence: str | None = None,
    ):
        self.path, self.labels, self.columns = Path(path), Path(labels), columns
        self.info = SourceInfo.of_user_data(
            name,
            f"User dataset: images from {self.path.name}, labels from {self.labels.name}.",
            self.path,
            classes,
            channels,
            licence,
        )

    def fetch(self) -> dict[str, Path]:
        for path in (self.path, self.labels):
            if not path.exists():
                raise DataError(f"{shown(str(path))}: no such file or folder")
        return {str(self.path): self.path, str(self.labels): self.labels}

    def input_files(self) -> list[dict[str, str | None]]:
        """The label table and a zip of images with their sha256 (a folder's images are covered
        by the manifest's hashes)."""
        files = [p for p in (self.path, self.labels) if p.is_file()]
        return [{"path": str(p), "sha256": file_sha256(p), "url": None} for p in files]

    def where(self) -> str:
        return shown(str(self.labels))

    def samples(self, files: dict[str, Path]) -> Iterator[RawSample]:
        rows = read_table(self.labels, self.columns)
        declared = self.info.classes
        with FileTree(self.path) as tree:
            index = _ImageIndex(tree)
            used: set[PurePosixPath] = set()
            found = []
            for row in rows:
                if declared is not None and row.label not in declared:
                    raise DataError(
                        f"{row.where}: label '{shown(row.label)}' is outside the declared set {list(declared)}"
                    )
                member = index.find(row)
                if member in used:
                    raise DataError(
                        f"{row.where}: image '{shown(row.image)}' is the file another row names ({member})"
                    )
                used.add(member)
                found.append((row, member))
            unnamed = [p for p in index.files if p not in used]
            if unnamed:
                raise DataError(
                    f"{shown(str(self.path))}: {len(unnamed)} image(s) have no row in {shown(self.labels.name)} "
                    f"(first: {shown(str(unnamed[0]))}); list them or move them out"
                )
            for row, member in found:
                yield RawSample(tree.origin(member), row.label, row.split, row.group, tree.read(member))
