"""Get a source's files: from the offline mirror when one is set, else download and cache.

Every file is pinned to a sha256. A mirror (``SYNTHDATA_DATA_MIRROR``) is read in place, never
copied; a download goes to ``SYNTHDATA_CACHE`` under a temporary name and is renamed only once
its checksum matches.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from synthdata.atomic import commit, partial_name
from synthdata.errors import ChecksumError, DataError
from synthdata.hashing import file_sha256
from synthdata.progress import progress_bar

MIRROR_ENV = "SYNTHDATA_DATA_MIRROR"
CACHE_ENV = "SYNTHDATA_CACHE"


@dataclass(frozen=True)
class RemoteFile:
    """One pinned file of a source."""

    path: str
    """Path under the mirror root and the cache, e.g. ``medmnist/pneumoniamnist.npz``."""
    sha256: str
    url: str | None
    """Where a connected machine downloads exactly these bytes; None when the bytes exist only
    as a mirror repack (the source's card names the upstream it was made from)."""


def mirror_root() -> Path | None:
    value = os.environ.get(MIRROR_ENV)
    return Path(value).expanduser() if value else None


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "synthdata")).expanduser()


def verify(path: Path, expected: str) -> Path:
    found = file_sha256(path)
    if found != expected:
        raise ChecksumError(f"{path}: checksum mismatch (sha256 {found}, expected {expected})")
    return path


def resolve(file: RemoteFile) -> Path:
    """Local path of ``file`` with its checksum verified; downloads only without a mirror."""
    mirror = mirror_root()
    if mirror is not None:
        local = mirror / file.path
        if not local.is_file():
            raise DataError(f"{local}: missing mirror file ({MIRROR_ENV}={mirror})")
        return verify(local, file.sha256)
    cached = cache_root() / file.path
    if cached.is_file():
        return verify(cached, file.sha256)
    if file.url is None:
        raise DataError(
            f"{file.path}: no public URL serves these exact bytes; set {MIRROR_ENV} to a mirror that holds it"
        )
    return download(file.url, cached, file.sha256)


def download(url: str, target: Path, sha256: str) -> Path:
    """Stream ``url`` to ``target`` (temp name, checksum, rename); nothing half-written remains."""
    import requests

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_name(target)
    digest = hashlib.sha256()
    try:
        with requests.get(url, stream=True, timeout=60) as response:
            response.raise_for_status()
            total = int(response.headers.get("content-length", 0)) or None
            with partial.open("wb") as handle, progress_bar(f"download {target.name}", total=total) as bar:
                for chunk in response.iter_content(chunk_size=1 << 20):
                    handle.write(chunk)
                    digest.update(chunk)
                    bar.advance(len(chunk))
    except requests.RequestException as exc:
        partial.unlink(missing_ok=True)
        raise DataError(f"{url}: download failed ({exc}); offline machines set {MIRROR_ENV}") from None
    if digest.hexdigest() != sha256:
        partial.unlink(missing_ok=True)
        raise ChecksumError(f"{url}: checksum mismatch (sha256 {digest.hexdigest()}, expected {sha256})")
    commit(partial, target)
    return target
