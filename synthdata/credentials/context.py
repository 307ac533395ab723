"""The c2pa-python settings every signing and reading call uses: nothing leaves the machine.

No timestamp authority (signers are made without one), no OCSP, no remote manifests, no
thumbnails (a thumbnail would copy pixels into the manifest and costs kilobytes per image).
c2pa-python 0.38.1 (c2pa-rs 0.91.3) accepts unknown settings keys silently, so these names were
checked against the keys the native library knows (``trust``, ``verify``, ``builder``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import c2pa

from synthdata.errors import DataError

OFFLINE = {
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_timestamp_trust": False},
    "builder": {
        "thumbnail": {"enabled": False},
        "certificate_status_fetch": None,
        "auto_timestamp_assertion": {"enabled": False},
    },
}


@lru_cache(maxsize=1)
def signing_context() -> c2pa.Context:
    """The context signing builders use (verify after sign stays on: a bad signature fails here)."""
    return c2pa.Context.from_dict(OFFLINE)


@lru_cache(maxsize=8)
def reading_context(trust_anchors: Path | None) -> c2pa.Context:
    """A reading context: issuer chains are checked against ``trust_anchors`` (PEM roots) when
    given; without anchors the signature and the hash binding are checked, not who signed."""
    verify = {**OFFLINE["verify"], "verify_trust": trust_anchors is not None}
    settings: dict = {"verify": verify, "builder": OFFLINE["builder"]}
    if trust_anchors is not None:
        settings["trust"] = {"trust_anchors": read_pem(trust_anchors, "trust anchors")}
    return c2pa.Context.from_dict(settings)


def read_pem(path: Path, what: str) -> str:
    """A PEM file's text; a missing or non-PEM file is a one-line :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such {what} file")
    text = path.read_text(encoding="ascii", errors="replace")
    if "-----BEGIN " not in text:
        raise DataError(f"{path}: not a PEM file ({what} expected)")
    return text
