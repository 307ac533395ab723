"""Check synthetic images against their Content Credentials, and a set folder against its manifest.

A file passes when its credential (embedded, or the ``<name>.c2pa`` sidecar beside it) has a
valid signature, its hard binding matches the file's bytes, its issuer chains to the given
trust anchors (when given), and it is a synthdata claim. A set folder passes when, in addition,
every manifest row agrees with its file's credential and the file's sha256 is the row's.
Each failure is one :class:`DataError` line naming the file and what failed.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import c2pa

from synthdata.credentials.claim import ACTION_LABELS, GENERATION_LABEL, HASH_PREFIX, generation, source_ids
from synthdata.credentials.context import reading_context
from synthdata.data.manifest import PROVENANCE_COLUMNS, read_manifest
from synthdata.errors import DataError
from synthdata.hashing import sha256_bytes

SIDECAR_SUFFIX = ".c2pa"

# c2pa validation codes -> what they mean for the person reading the error line.
FAILURES = {
    "assertion.dataHash.mismatch": "hash binding broken: the bytes changed after signing (or the credential is another file's)",
    "claimSignature.mismatch": "signature invalid",
    "signingCredential.untrusted": "signer does not chain to the trust anchors",
    "signingCredential.invalid": "signing certificate invalid",
    "signingCredential.expired": "signing certificate expired",
}


@dataclass(frozen=True)
class Verified:
    """A file whose credential checked out, and what the credential says."""

    path: Path
    generation: dict[str, Any]
    digital_source_type: str
    sources: dict[str, str]  # source image id -> sha256
    signer: str
    trusted: bool  # chains to the trust anchors given (False when none were given)
    embedded: bool


@dataclass(frozen=True)
class FolderSummary:
    """A set folder whose every image checked out against its credential and manifest row."""

    folder: Path
    images: int
    embedded: int
    sidecars: int
    signers: tuple[str, ...]
    trusted: bool
    source_types: dict[str, int]


def _read(path: Path, trust_anchors: Path | None) -> tuple[dict[str, Any], bool]:
    """The manifest store of ``path`` as c2pa reports it, and whether it came from a sidecar."""
    data = path.read_bytes()
    side = path.with_suffix(SIDECAR_SUFFIX)
    manifest = side.read_bytes() if side.is_file() else None
    try:
        reader = c2pa.Reader("image/png", io.BytesIO(data), manifest, context=reading_context(trust_anchors))
        with reader:
            return json.loads(reader.json()), manifest is not None
    except c2pa.C2paError.ManifestNotFound:
        raise DataError(f"{path}: no content credential (stripped, or never signed)") from None
    except c2pa.C2paError as exc:
        raise DataError(f"{path}: unreadable content credential ({' '.join(str(exc).split())})") from None


def _check_validation(path: Path, store: dict[str, Any], trust_anchors: Path | None) -> None:
    results = store.get("validation_results", {}).get("activeManifest", {})
    failures = [f["code"] for f in results.get("failure", [])]
    if failures:
        reason = FAILURES.get(failures[0], f"{failures[0]} ({results['failure'][0].get('explanation', '')})")
        raise DataError(f"{path}: credential check failed: {reason}")
    state = store.get("validation_state")
    wanted = ("Trusted",) if trust_anchors is not None else ("Valid", "Trusted")
    if state not in wanted:
        raise DataError(f"{path}: credential is {state}, not {' or '.join(wanted)}")


def _created_source_type(path: Path, manifest: dict[str, Any]) -> str:
    for assertion in manifest.get("assertions", []):
        if assertion.get("label") in ACTION_LABELS:
            for action in assertion["data"].get("actions", []):
                if action.get("action") == "c2pa.created":
                    return str(action.get("digitalSourceType", ""))
    raise DataError(f"{path}: credential has no c2pa.created action")


def verify_file(path: Path, trust_anchors: Path | None = None) -> Verified:
    """Check one PNG's credential (see the module docstring); what it says, or a :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    store, from_sidecar = _read(path, trust_anchors)
    _check_validation(path, store, trust_anchors)
    manifest = store["manifests"][store["active_manifest"]]
    found = [a["data"] for a in manifest.get("assertions", []) if a.get("label") == GENERATION_LABEL]
    if not found:
        raise DataError(f"{path}: credential has no {GENERATION_LABEL} assertion (not made by synthdata)")
    info = manifest.get("signature_info", {})
    return Verified(
        path=path,
        generation=found[0],
        digital_source_type=_created_source_type(path, manifest),
        sources={
            i.get("title", ""): str(i.get("instance_id", "")).removeprefix(HASH_PREFIX)
            for i in manifest.get("ingredients", [])
        },
        signer=f"{info.get('common_name', '?')} (issuer {info.get('issuer', '?')})",
        trusted=store.get("validation_state") == "Trusted",
        embedded=not from_sidecar,
    )


def check_row(row: dict[str, Any], verified: Verified, data: bytes) -> None:
    """The credential and the file agree with the manifest row, or a :class:`DataError` naming the file."""
    path = verified.path
    if sha256_bytes(data) != row["sha256"]:
        raise DataError(
            f"{path}: sha256 {sha256_bytes(data)[:12]}... differs from the manifest row's {str(row['sha256'])[:12]}..."
        )
    expected = generation(row)
    for name, value in expected.items():
        if verified.generation.get(name) != value:
            raise DataError(f"{path}: credential {name} {verified.generation.get(name)!r} != manifest row {value!r}")
    if verified.digital_source_type != row["digital_source_type"]:
        raise DataError(
            f"{path}: credential digital source type {verified.digital_source_type} != manifest row {row['digital_source_type']}"
        )
    if sorted(verified.sources) != sorted(source_ids(row)):
        raise DataError(
            f"{path}: credential sources {sorted(verified.sources)} != manifest row {sorted(source_ids(row))}"
        )


def verify_folder(folder: Path, trust_anchors: Path | None = None) -> FolderSummary:
    """Check every image of a synthetic set folder (``manifest.parquet`` + PNGs) against its
    credential and its row; the first failure is a :class:`DataError` naming the file."""
    folder = Path(folder)
    frame = read_manifest(folder)
    missing = [c for c in PROVENANCE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{folder}: manifest lacks provenance column {missing[0]} (not a synthetic set)")
    root = folder.resolve()
    checked: list[Verified] = []
    for row in frame.to_dict("records"):
        path = folder / str(row["relpath"])
        if not path.resolve().is_relative_to(root):
            raise DataError(f"{path}: manifest path leaves the folder {folder}")
        verified = verify_file(path, trust_anchors)
        check_row(row, verified, path.read_bytes())
        checked.append(verified)
    embedded = sum(v.embedded for v in checked)
    return FolderSummary(
        folder=folder,
        images=len(checked),
        embedded=embedded,
        sidecars=len(checked) - embedded,
        signers=tuple(sorted({v.signer for v in checked})),
        trusted=trust_anchors is not None,
        source_types=dict(Counter(v.digital_source_type.rsplit("/", 1)[-1] for v in checked)),
    )
