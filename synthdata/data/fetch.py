"""Get a source's files: from the offline mirror when one is set, else download and cache.

Every file is pinned: to a sha256, to the md5 its publisher or a well-kept library publishes
(torchvision publishes md5s), or to both, and every pin it has is checked. A file nobody
publishes a checksum for is pinned by the user, through the environment variable it names,
or refused. A mirror (``SYNTHDATA_DATA_MIRROR``) is read in place, never copied; a download
(``http(s)://`` or ``file://``) goes to ``SYNTHDATA_CACHE`` under a temporary name and is
renamed only once its checksums match. Whatever the pin, the dataset card records the verified
file's sha256.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from synthdata.atomic import commit, partial_name
from synthdata.errors import ChecksumError, DataError
from synthdata.hashing import file_sha256
from synthdata.progress import progress_bar

MIRROR_ENV = "SYNTHDATA_DATA_MIRROR"
CACHE_ENV = "SYNTHDATA_CACHE"
_CHUNK = 1 << 20
_HEX = {"sha256": re.compile(r"[0-9a-f]{64}"), "md5": re.compile(r"[0-9a-f]{32}")}


@dataclass(frozen=True)
class RemoteFile:
    """One pinned file of a source."""

    path: str
    """Path under the mirror root and the cache, e.g. ``medmnist/pneumoniamnist.npz``."""
    sha256: str | None
    url: str | None
    """Where a connected machine downloads exactly these bytes; None when the bytes exist only
    as a mirror repack (the source's card names the upstream it was made from)."""
    md5: str | None = None
    """The publisher's md5, where that is what is published (checked beside any sha256)."""
    pin_env: str | None = None
    """For a file no publisher or kept library publishes a checksum for: the environment
    variable through which the user gives the sha256 they checked their copy against."""

    def __post_init__(self) -> None:
        for kind, pattern in _HEX.items():
            value = getattr(self, kind)
            if value is not None and not pattern.fullmatch(value):
                raise ValueError(f"{self.path}: {kind} pin '{value}' is not lower-case hex of the right length")
        if self.sha256 is None and self.md5 is None and self.pin_env is None:
            raise ValueError(f"{self.path}: a file needs a sha256 or md5 pin (or pin_env for the user's)")


def mirror_root() -> Path | None:
    value = os.environ.get(MIRROR_ENV)
    return Path(value).expanduser() if value else None


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "synthdata")).expanduser()


class _Digests:
    """sha256 and md5 of one stream of bytes, computed in one pass."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)

    def update(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        self.md5.update(chunk)

    def check(self, where: str, file: RemoteFile) -> str:
        """The sha256, once every pin of ``file`` matches; else a one-line :class:`ChecksumError`."""
        for kind, expected in (("sha256", file.sha256), ("md5", file.md5)):
            found = getattr(self, kind).hexdigest()
            if expected is not None and found != expected:
                raise ChecksumError(f"{where}: checksum mismatch ({kind} {found}, expected {expected})")
        return self.sha256.hexdigest()


def pinned(file: RemoteFile) -> RemoteFile:
    """``file`` with a checksum to check: its own pins, else the sha256 the user gives in its
    ``pin_env``; without either it is refused, saying how to give one."""
    if file.sha256 is not None or file.md5 is not None:
        return file
    value = os.environ.get(file.pin_env or "", "").strip().lower()
    if not value:
        raise DataError(
            f"{file.path}: no publisher or kept library publishes a checksum for this file, so it is not "
            f"used unverified; get it from {file.url}, check it, and set {file.pin_env} to its sha256 "
            f"(or set {MIRROR_ENV} to a mirror)"
        )
    if not _HEX["sha256"].fullmatch(value):
        raise DataError(f"{file.pin_env}={value}: not a sha256 (64 hex digits) for {file.path}")
    return replace(file, sha256=value)


def verify(path: Path, file: RemoteFile) -> Path:
    """``path``, checked against every pin of ``file``."""
    digests = _Digests()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digests.update(block)
    digests.check(str(path), file)
    return path


def local_copy(file: RemoteFile) -> Path:
    """Where ``file`` is read from: under the mirror when one is set, else under the cache."""
    mirror = mirror_root()
    return (mirror if mirror is not None else cache_root()) / file.path


def resolve(file: RemoteFile) -> Path:
    """Local path of ``file`` with its checksums verified; downloads only without a mirror."""
    file = pinned(file)
    local = local_copy(file)
    if local.is_file():
        return verify(local, file)
    if mirror_root() is not None:
        raise DataError(f"{local}: missing mirror file ({MIRROR_ENV}={mirror_root()})")
    if file.url is None:
        raise DataError(
            f"{file.path}: no public URL serves these exact bytes; set {MIRROR_ENV} to a mirror that holds it"
        )
    return download(file.url, local, file)


def card_record(file: RemoteFile) -> dict[str, Any]:
    """``file`` as the dataset card records it once :func:`resolve` has verified it: path, sha256,
    url; and the md5 or the user's pin where that is what was checked. A file pinned by md5 alone
    gets the sha256 of its verified local copy."""
    record: dict[str, Any] = {"path": file.path, "sha256": file.sha256, "url": file.url}
    if file.md5 is not None:
        record["md5"] = file.md5
        if file.sha256 is None:
            local = local_copy(file)
            record["sha256"] = file_sha256(local) if local.is_file() else None
    elif file.sha256 is None:
        record["sha256"] = os.environ.get(file.pin_env or "", "").strip().lower() or None
        record["pinned_by"] = f"{file.pin_env} (the user's checksum: no publisher publishes one)"
    return record


def download(url: str, target: Path, file: RemoteFile) -> Path:
    """Stream ``url`` (http, https or file) to ``target``: a temporary name, the checksums, then
    one rename. Nothing half-written remains, whatever fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_name(target)
    digests = _Digests()
    try:
        with _stream(url) as (total, chunks):
            with partial.open("wb") as handle, progress_bar(f"download {target.name}", total=total) as bar:
                for chunk in chunks:
                    handle.write(chunk)
                    digests.update(chunk)
                    bar.advance(len(chunk))
        digests.check(url, file)
    except OSError as exc:  # requests' errors are OSErrors too
        partial.unlink(missing_ok=True)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{url}: download failed ({reason}); offline machines set {MIRROR_ENV}") from None
    except DataError:
        partial.unlink(missing_ok=True)
        raise
    return commit(partial, target)


@contextmanager
def _stream(url: str) -> Iterator[tuple[int | None, Iterator[bytes]]]:
    """The size (when known) and the chunks of ``url``; ``file://`` reads a local file, which is
    how a copy on a shared disk is taken in (and how the download path is tested offline)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        path = Path(url2pathname(parsed.path))
        with path.open("rb") as handle:
            yield path.stat().st_size, iter(lambda: handle.read(_CHUNK), b"")
        return
    if parsed.scheme not in ("http", "https"):
        raise DataError(f"{url}: cannot download from a '{parsed.scheme}' URL (http, https or file)")
    import requests

    with requests.get(url, stream=True, timeout=60) as response:
        response.raise_for_status()
        yield int(response.headers.get("content-length", 0)) or None, response.iter_content(chunk_size=_CHUNK)
