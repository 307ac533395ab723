"""A user's own dataset: an ImageFolder tree (folder or zip) or a MedMNIST-style ``.npz``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from synthdata.data.archives import FileTree
from synthdata.data.sources.base import RawSample, Source, SourceInfo
from synthdata.data.sources.readers import class_folder_samples, npz_samples
from synthdata.errors import DataError
from synthdata.hashing import file_sha256
from synthdata.paths import shown


class UserSource(Source):
    """``kind`` is ``imagefolder`` or ``npz``; classes default to the folder names (sorted) or
    ``class_<i>`` for npz labels."""

    def __init__(
        self,
        kind: str,
        path: Path | str,
        *,
        name: str,
        classes: Sequence[str] | None = None,
        channels: int | None = None,
        licence: str | None = None,
    ):
        self.kind, self.path = kind, Path(path)
        self.info = SourceInfo.of_user_data(
            name, f"User dataset ({kind}) read from {self.path.name}.", self.path, classes, channels, licence
        )

    def fetch(self) -> dict[str, Path]:
        if not self.path.exists():
            raise DataError(f"{self.where()}: no such file or folder")
        return {str(self.path): self.path}

    def input_files(self) -> list[dict[str, str | None]]:
        """The user's archive with its sha256 (a folder is covered by the manifest's hashes)."""
        if self.path.is_file():
            return [{"path": str(self.path), "sha256": file_sha256(self.path), "url": None}]
        return []

    def where(self) -> str:
        """The user's folder, zip or npz file."""
        return shown(str(self.path))

    def label_order(self, found: set[str]) -> list[str]:
        """Undeclared npz classes are ``class_<label>`` (every label from 0 up, see
        :func:`npz_samples`): in the file's integer order, so ``class_10`` keeps label 10."""
        if self.kind == "npz" and self.info.classes is None:
            return sorted(found, key=lambda name: int(name.removeprefix("class_")))
        return super().label_order(found)

    def samples(self, files: dict[str, Path]) -> Iterator[RawSample]:
        if self.kind == "npz":
            _, samples = npz_samples(self.path, self.info.classes)
            yield from samples
            return
        with FileTree(self.path) as tree:
            yield from class_folder_samples(tree, declared=self.info.classes)
