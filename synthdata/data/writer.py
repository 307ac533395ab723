"""Write a dataset folder so that it appears whole or not at all, and resumes after a kill.

Images go to a staging folder beside the target (same filesystem), each under a temporary name
then renamed; the manifest and card are written last, and the staging folder is renamed onto
the target in one step. A rerun with the same build key reuses images already written, so a
killed ingest resumes without duplicates or partial files.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from synthdata.atomic import publish_folder, write_bytes
from synthdata.data.card import DatasetCard
from synthdata.data.expectations import validate_dataset
from synthdata.data.manifest import to_frame, write_manifest
from synthdata.hashing import sha256_bytes
from synthdata.paths import path_component

_KEY_FILE = ".build-key"


def staging_path(target: Path) -> Path:
    """Where ``target`` is built before it is renamed into place."""
    return Path(target).parent / f".staging-{Path(target).name}"


class DatasetWriter:
    """Stage a dataset's files, then publish them atomically to ``target``."""

    def __init__(self, target: Path, build_key: str):
        self.target = Path(target)
        self.staging = staging_path(self.target)
        self.rows: list[dict] = []
        self.reused = 0
        key_file = self.staging / _KEY_FILE
        if self.staging.exists():
            previous = key_file.read_text() if key_file.is_file() else None
            if previous != build_key:
                shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True, exist_ok=True)
        key_file.write_text(build_key)

    def add(self, relpath: str, data: bytes, row: dict) -> dict:
        """Write one file (unless an identical one is already staged) and record its row. A
        ``relpath`` with a part that is not a plain folder or file name (``..``, empty, a leading
        dot, a control character) is refused, naming the row's origin: nothing lands outside the
        dataset folder, whoever built the path."""
        for part in relpath.split("/"):
            path_component(part, row.get("origin") or relpath, what="path part")
        path = self.staging / relpath
        digest = sha256_bytes(data)
        if path.is_file() and sha256_bytes(path.read_bytes()) == digest:
            self.reused += 1
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(path, data)
        full = {**row, "relpath": relpath, "sha256": digest}
        self.rows.append(full)
        return full

    def frame(self) -> pd.DataFrame:
        return to_frame(self.rows)

    def publish(
        self,
        frame: pd.DataFrame,
        card: DatasetCard,
        extra: dict[str, object] | None = None,
        *,
        keep: tuple[str, ...] = (),
        seal: Callable[[Path], Path] | None = None,
    ) -> Path:
        """Check the staged dataset with the manifest suite, write manifest, card and extra JSON
        records, drop stray files (all but the frame's and ``keep``), and rename into place.
        ``seal(staging)``, when given, runs once the manifest is written (a signature over it).
        A failing check publishes nothing."""
        keep = set(frame["relpath"]) | set(keep)
        for path in sorted(self.staging.rglob("*"), reverse=True):
            rel = path.relative_to(self.staging).as_posix()
            if path.is_file() and rel not in keep and rel != _KEY_FILE:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        validate_dataset(self.staging, frame, card)
        write_manifest(frame, self.staging)
        if seal is not None:
            seal(self.staging)
        card.write(self.staging)
        for name, record in (extra or {}).items():
            (self.staging / name).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        (self.staging / _KEY_FILE).unlink()
        return publish_folder(self.staging, self.target)
