"""Read files out of a folder or a zip archive without ever leaving its root.

Members are read into memory, never extracted. A member whose name is absolute, climbs out
with ``..``, is a symbolic link, is encrypted, uses a compression zipfile cannot undo, or
names the same file as another member is refused when the archive is opened, naming the
archive and the member.
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from synthdata.errors import DataError
from synthdata.paths import shown

# No single image in any supported dataset comes near this; a member claiming more is refused
# before it is decompressed.
MAX_MEMBER_BYTES = 256 * 1024 * 1024

_READABLE_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_METHOD_NAMES = {6: "Implode", 9: "Deflate64", 93: "Zstandard", 95: "XZ", 98: "PPMd", 99: "AES encryption"}
_ENCRYPTED = 0x1


def safe_member_name(name: str, archive: Path | str) -> PurePosixPath:
    """The member path, checked to stay inside the archive's root; a backslash separates
    folders (as old Windows tools write it)."""
    normalised = name.replace("\\", "/")
    path = PurePosixPath(normalised)
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        raise DataError(f"{shown(str(archive))}: member '{shown(name)}' has an absolute path")
    if ".." in path.parts:
        raise DataError(f"{shown(str(archive))}: member '{shown(name)}' escapes the archive with '..'")
    return path


def _readable_members(archive: zipfile.ZipFile, root: Path) -> dict[PurePosixPath, zipfile.ZipInfo]:
    """Every file member by its checked path (folders hold no data); see the module docstring
    for what is refused."""
    where = shown(str(root))
    members: dict[PurePosixPath, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        path = safe_member_name(info.filename, root)
        name = shown(info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataError(f"{where}: member '{name}' is a symbolic link")
        if info.is_dir():
            continue
        if info.flag_bits & _ENCRYPTED:
            raise DataError(f"{where}: member '{name}' is encrypted (password-protected archives are not supported)")
        if info.compress_type not in _READABLE_METHODS:
            method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
            raise DataError(
                f"{where}: member '{name}' is compressed with {method}, which cannot be read; "
                "re-pack the archive with Deflate"
            )
        if path in members:
            first = shown(members[path].filename)
            raise DataError(f"{where}: members '{first}' and '{name}' name the same file")
        members[path] = info
    return members


class FileTree:
    """Uniform read access to the files of a folder or a ``.zip``."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        if not self.root.exists():
            raise DataError(f"{shown(str(self.root))}: no such file or folder")
        self._zip: zipfile.ZipFile | None = None
        self._members: dict[PurePosixPath, zipfile.ZipInfo] = {}
        if self.root.is_file():
            if not zipfile.is_zipfile(self.root):
                raise DataError(f"{shown(str(self.root))}: not a folder or a zip archive")
            try:
                self._zip = zipfile.ZipFile(self.root)
            except zipfile.BadZipFile as exc:
                raise DataError(f"{shown(str(self.root))}: corrupt zip archive ({exc})") from None
            try:
                self._members = _readable_members(self._zip, self.root)
            except DataError:
                self._zip.close()
                raise

    def __enter__(self) -> FileTree:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._zip is not None:
            self._zip.close()

    def files(self) -> Iterator[PurePosixPath]:
        """Relative paths of every regular file, sorted; unsafe entries raise :class:`DataError`."""
        if self._zip is not None:
            yield from sorted(self._members)
            return
        root = self.root.resolve()
        for path in sorted(self.root.rglob("*")):
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(root):
                    raise DataError(
                        f"{shown(str(path))}: symbolic link leaves the dataset folder ({shown(str(target))})"
                    )
            if path.is_file():
                yield PurePosixPath(path.relative_to(self.root).as_posix())

    def read(self, member: PurePosixPath) -> bytes:
        """Bytes of one file; sizes are checked before decompression."""
        if self._zip is not None:
            info = self._members[member]
            named = f"{shown(str(self.root))}: member '{shown(str(member))}'"
            if info.file_size > MAX_MEMBER_BYTES:
                raise DataError(f"{named} is {info.file_size} bytes, over the limit")
            try:
                return self._zip.read(info)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                # NotImplementedError: flags zipfile only finds in the member's local header.
                raise DataError(f"{named} cannot be read ({exc})") from None
        path = self.root / member
        if path.stat().st_size > MAX_MEMBER_BYTES:
            raise DataError(f"{shown(str(path))}: {path.stat().st_size} bytes, over the limit")
        return path.read_bytes()

    def origin(self, member: PurePosixPath) -> str:
        """How a member is named in messages and in the manifest's ``origin`` column (escaped
        by :func:`synthdata.paths.shown`, so a newline in a file name cannot split a message)."""
        return shown(f"{self.root.name}:{member}" if self._zip is not None else str(member))
