"""What every data source provides: its card facts, its pinned files, and its raw samples.

A built-in source has two sets of pinned files: the offline mirror's (read when
``SYNTHDATA_DATA_MIRROR`` is set) and, where the mirror's are repacks, the publisher's own
(``upstream``, downloaded when no mirror is set). Both give the same kind of dataset folder: same
classes, label order and channels; each source's docstring says where their images differ.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synthdata.data.fetch import RemoteFile, card_record, mirror_root, resolve


@dataclass(frozen=True)
class RawSample:
    """One image as the source holds it, before decoding and checks."""

    origin: str
    """Where it is in the source (archive member or array index); unique within a source."""
    label_name: str
    split: str | None
    """The source's official split, or None when synthdata must make one."""
    group: str | None
    """Samples sharing a group must share a split (e.g. one physical sign's track)."""
    payload: bytes | np.ndarray
    """Encoded image bytes, or an array for array-based sources."""


@dataclass(frozen=True)
class SourceInfo:
    name: str
    description: str
    homepage: str
    citation: str
    licence: str
    classes: tuple[str, ...] | None
    """Declared label set in label order; None lets a user source derive it."""
    channels: int | None
    files: tuple[RemoteFile, ...] = field(default_factory=tuple)
    """The mirror's files (``SYNTHDATA_DATA_MIRROR``); downloaded too when no ``upstream`` is given."""
    upstream: tuple[RemoteFile, ...] = field(default_factory=tuple)
    """The publisher's own files, downloaded when no mirror is set; empty when the mirror holds
    the publisher's bytes (MedMNIST)."""

    @classmethod
    def of_user_data(
        cls,
        name: str,
        description: str,
        path: Path,
        classes: Sequence[str] | None,
        channels: int | None,
        licence: str | None,
    ) -> SourceInfo:
        """The card facts of a user's own data: no citation, the licence the recipe states."""
        return cls(
            name=name,
            description=description,
            homepage=str(path),
            citation="",
            licence=licence or "unspecified",
            classes=tuple(classes) if classes is not None else None,
            channels=channels,
        )


class Source(ABC):
    """A dataset synthdata can ingest."""

    info: SourceInfo

    def pinned_files(self) -> tuple[RemoteFile, ...]:
        """The files this machine reads: the mirror's when a mirror is set (or when the source
        has no upstream files of its own), else the publisher's."""
        if mirror_root() is not None or not self.info.upstream:
            return self.info.files
        return self.info.upstream

    def fetch(self) -> dict[str, Path]:
        """Local, checksum-verified paths of :meth:`pinned_files`, keyed by their pinned path."""
        return {f.path: resolve(f) for f in self.pinned_files()}

    def input_files(self) -> list[dict[str, str | None]]:
        """The inputs as recorded on the dataset card (see :func:`card_record`)."""
        return [card_record(f) for f in self.pinned_files()]

    def reads_mirror(self, files: dict[str, Path]) -> bool:
        """Whether ``files`` are the mirror's (else they are the publisher's): what
        :meth:`samples` dispatches on."""
        return bool(self.info.files) and all(f.path in files for f in self.info.files)

    def where(self) -> str:
        """How messages about the source as a whole name it."""
        return self.info.name

    def label_order(self, found: set[str]) -> list[str]:
        """The classes in label order: the declared ones, else the ``found`` names sorted."""
        return list(self.info.classes) if self.info.classes is not None else sorted(found)

    @abstractmethod
    def samples(self, files: dict[str, Path]) -> Iterator[RawSample]:
        """Every raw sample, in a deterministic order."""
