"""Read files out of a folder or a zip archive without ever leaving its root.

Members are read into memory, never extracted, and a member whose name is absolute, climbs
out with ``..``, or is a symbolic link is refused, naming the archive and the member.
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from synthdata.errors import DataError

# No single image in any supported dataset comes near this; a member claiming more is refused
# before it is decompressed.
MAX_MEMBER_BYTES = 256 * 1024 * 1024


def safe_member_name(name: str, archive: Path | str) -> PurePosixPath:
    """The member path, checked to stay inside the archive's root."""
    normalised = name.replace("\\", "/")
    path = PurePosixPath(normalised)
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        raise DataError(f"{archive}: member '{name}' has an absolute path")
    if ".." in path.parts:
        raise DataError(f"{archive}: member '{name}' escapes the archive with '..'")
    return path


class FileTree:
    """Uniform read access to the files of a folder or a ``.zip``."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        if not self.root.exists():
            raise DataError(f"{self.root}: no such file or folder")
        self._zip: zipfile.ZipFile | None = None
        if self.root.is_file():
            if not zipfile.is_zipfile(self.root):
                raise DataError(f"{self.root}: not a folder or a zip archive")
            try:
                self._zip = zipfile.ZipFile(self.root)
            except zipfile.BadZipFile as exc:
                raise DataError(f"{self.root}: corrupt zip archive ({exc})") from None

    def __enter__(self) -> FileTree:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._zip is not None:
            self._zip.close()

    def files(self) -> Iterator[PurePosixPath]:
        """Relative paths of every regular file, sorted; unsafe entries raise :class:`DataError`."""
        if self._zip is not None:
            names = []
            for info in self._zip.infolist():
                path = safe_member_name(info.filename, self.root)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise DataError(f"{self.root}: member '{info.filename}' is a symbolic link")
                if not info.is_dir():
                    names.append(path)
            yield from sorted(names)
            return
        root = self.root.resolve()
        for path in sorted(self.root.rglob("*")):
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(root):
                    raise DataError(f"{path}: symbolic link leaves the dataset folder ({target})")
            if path.is_file():
                yield PurePosixPath(path.relative_to(self.root).as_posix())

    def read(self, member: PurePosixPath) -> bytes:
        """Bytes of one file; sizes are checked before decompression."""
        if self._zip is not None:
            info = self._zip.getinfo(str(member))
            if info.file_size > MAX_MEMBER_BYTES:
                raise DataError(f"{self.root}: member '{member}' is {info.file_size} bytes, over the limit")
            try:
                return self._zip.read(info)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise DataError(f"{self.root}: member '{member}' cannot be read ({exc})") from None
        path = self.root / member
        if path.stat().st_size > MAX_MEMBER_BYTES:
            raise DataError(f"{path}: {path.stat().st_size} bytes, over the limit")
        return path.read_bytes()

    def origin(self, member: PurePosixPath) -> str:
        """How a member is named in messages and in the manifest's ``origin`` column."""
        return f"{self.root.name}:{member}" if self._zip is not None else str(member)
