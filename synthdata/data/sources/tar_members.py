"""Read the files of a tar archive (plain or compressed) without extracting it.

The same rules as zip archives (``synthdata/data/archives.py``): a member whose name is absolute
or climbs out with ``..``, a link, a device or a FIFO, two members naming one file, and a member
over :data:`~synthdata.data.archives.MAX_MEMBER_BYTES` are refused, naming the archive and the
member. Members are read into memory in archive order, in one pass (a ``.tar.gz`` cannot seek).
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from synthdata.data.archives import MAX_MEMBER_BYTES, safe_member_name
from synthdata.errors import DataError
from synthdata.paths import shown


def tar_files(archive: Path) -> Iterator[tuple[PurePosixPath, bytes]]:
    """Every regular file of ``archive`` with its bytes, in archive order; folders are skipped."""
    where = shown(str(archive))
    seen: set[PurePosixPath] = set()
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                path = _checked(member, archive, seen)
                if path is None:
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    raise DataError(f"{where}: member '{shown(member.name)}' cannot be read")
                yield path, handle.read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{where}: corrupt or truncated tar archive ({exc})") from None


def _checked(member: tarfile.TarInfo, archive: Path, seen: set[PurePosixPath]) -> PurePosixPath | None:
    """The member's checked path; None for a folder."""
    where, name = shown(str(archive)), shown(member.name)
    path = safe_member_name(member.name, archive)
    if member.isdir():
        return None
    if member.issym() or member.islnk():
        raise DataError(f"{where}: member '{name}' is a link")
    if not member.isfile():
        raise DataError(f"{where}: member '{name}' is not a regular file")
    if member.size > MAX_MEMBER_BYTES:
        raise DataError(f"{where}: member '{name}' is {member.size} bytes, over the limit")
    if path in seen:
        raise DataError(f"{where}: member '{name}' names the same file as an earlier member")
    seen.add(path)
    return path
