"""Check synthetic images against their Content Credentials: a file, a set folder, a WebDataset shard.

A file passes when its credential (embedded, or the ``<name>.c2pa`` sidecar beside it) has a
valid signature, its hard binding matches the file's bytes, its issuer chains to the given
trust anchors (when given), and it is a synthdata claim. A set folder passes when, in addition,
its signed ``manifest.c2pa`` (when there is one) binds ``manifest.parquet`` and names the rows'
hash the card records, every manifest row agrees with its file's credential (generation, lineage,
review) and its file's sha256, and, given the dataset the set names, every real source the
lineage names is a train image of that dataset with the sha256 the credential holds. A shard
passes when each image in it agrees with its credential and with the row stored beside it.
Each failure is one :class:`DataError` line naming the file and what failed.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import c2pa
import pandas as pd

from synthdata.credentials.claim import (
    ACTION_LABELS,
    GENERATION_LABEL,
    HASH_PREFIX,
    REVIEW_LABEL,
    generation,
    review_of,
    source_ids,
)
from synthdata.credentials.context import reading_context
from synthdata.credentials.sign import DATASET_LABEL, OCTET, PNG, SEAL_FILE, SIDECAR_SUFFIX
from synthdata.data.card import CARD_FILE, named_dataset, read_card
from synthdata.data.manifest import MANIFEST_FILE, PROVENANCE_COLUMNS, manifest_hash, read_manifest
from synthdata.errors import DataError
from synthdata.hashing import sha256_bytes

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
    review: dict[str, Any] | None = None


@dataclass(frozen=True)
class FolderSummary:
    """A set folder (or shard) whose every image checked out against its credential and row."""

    folder: Path
    images: int
    embedded: int
    sidecars: int
    signers: tuple[str, ...]
    trusted: bool
    source_types: dict[str, int]
    sealed: bool = False
    """``manifest.c2pa`` was there and binds the manifest (a folder only)."""
    hashed_only: int = 0
    """Images checked by their sha256 against the signed manifest only (``dataset`` credentials)."""
    source_hashes: dict[str, str] = field(default_factory=dict)
    """Each real source image the credentials name -> its sha256 there."""
    lineage: str = ""
    """The dataset the sources were found in, or why they were not checked."""
    reviewed: dict[str, int] = field(default_factory=dict)
    """Review decision -> images carrying it."""
    reviewers: tuple[str, ...] = ()


def _read(label: Path, data: bytes, manifest: bytes | None, mime: str, trust_anchors: Path | None) -> dict[str, Any]:
    """The manifest store of ``data`` (or the detached ``manifest``) as c2pa reports it."""
    try:
        with c2pa.Reader(mime, io.BytesIO(data), manifest, context=reading_context(trust_anchors)) as reader:
            return json.loads(reader.json())
    except c2pa.C2paError.ManifestNotFound:
        raise DataError(f"{label}: no content credential (stripped, or never signed)") from None
    except c2pa.C2paError as exc:
        raise DataError(f"{label}: unreadable content credential ({' '.join(str(exc).split())})") from None


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


def _assertion(manifest: dict[str, Any], label: str) -> dict[str, Any] | None:
    found = [a["data"] for a in manifest.get("assertions", []) if a.get("label") == label]
    return found[0] if found else None


def _created_source_type(path: Path, manifest: dict[str, Any]) -> str:
    for assertion in manifest.get("assertions", []):
        if assertion.get("label") in ACTION_LABELS:
            for action in assertion["data"].get("actions", []):
                if action.get("action") == "c2pa.created":
                    return str(action.get("digitalSourceType", ""))
    raise DataError(f"{path}: credential has no c2pa.created action")


def _signer(manifest: dict[str, Any]) -> str:
    info = manifest.get("signature_info", {})
    return f"{info.get('common_name', '?')} (issuer {info.get('issuer', '?')})"


def verify_bytes(label: Path, data: bytes, manifest: bytes | None, trust_anchors: Path | None = None) -> Verified:
    """Check one PNG's bytes against its credential (embedded, or the detached ``manifest``)."""
    store = _read(label, data, manifest, PNG, trust_anchors)
    _check_validation(label, store, trust_anchors)
    active = store["manifests"][store["active_manifest"]]
    made = _assertion(active, GENERATION_LABEL)
    if made is None:
        raise DataError(f"{label}: credential has no {GENERATION_LABEL} assertion (not made by synthdata)")
    return Verified(
        path=label,
        generation=made,
        digital_source_type=_created_source_type(label, active),
        sources={
            i.get("title", ""): str(i.get("instance_id", "")).removeprefix(HASH_PREFIX)
            for i in active.get("ingredients", [])
        },
        signer=_signer(active),
        trusted=store.get("validation_state") == "Trusted",
        embedded=manifest is None,
        review=_assertion(active, REVIEW_LABEL),
    )


def verify_file(path: Path, trust_anchors: Path | None = None) -> Verified:
    """Check one PNG's credential (see the module docstring); what it says, or a :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    side = path.with_suffix(SIDECAR_SUFFIX)
    return verify_bytes(path, path.read_bytes(), side.read_bytes() if side.is_file() else None, trust_anchors)


def check_row(row: dict[str, Any], verified: Verified, data: bytes) -> None:
    """The credential and the file agree with the manifest row, or a :class:`DataError` naming the file."""
    path = verified.path
    if verified.generation.get("id") != row["id"]:
        raise DataError(
            f"{path}: holds the credential of image {verified.generation.get('id')!r}, not of {row['id']!r}: "
            "a swapped, renamed or replaced file"
        )
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
    if verified.review != review_of(row):
        raise DataError(f"{path}: credential review {verified.review} != manifest row {review_of(row)}")


def _check_seal(folder: Path, frame: pd.DataFrame, card: Any, trust_anchors: Path | None) -> bool:
    """Check ``manifest.c2pa`` against ``manifest.parquet`` and the card; False when the set has
    none (an unsigned set, or one whose card says nothing was signed)."""
    seal = folder / SEAL_FILE
    says_signed = bool(card is not None and (card.credentials or {}).get("signer"))
    if not seal.is_file():
        if says_signed:
            raise DataError(f"{seal}: missing, but {folder / CARD_FILE} says the manifest was signed")
        return False
    parquet = folder / MANIFEST_FILE
    store = _read(seal, parquet.read_bytes(), seal.read_bytes(), OCTET, trust_anchors)
    _check_validation(seal, store, trust_anchors)
    data = _assertion(store["manifests"][store["active_manifest"]], DATASET_LABEL) or {}
    actual = manifest_hash(frame)
    if data.get("manifest_sha256") != actual:
        raise DataError(f"{seal}: signs rows with hash {str(data.get('manifest_sha256'))[:16]}..., not {parquet}'s")
    if card is not None and card.manifest_sha256 != actual:
        raise DataError(f"{folder / CARD_FILE}: records manifest {card.manifest_sha256[:16]}..., not the signed one")
    return True


def _rows(folder: Path) -> pd.DataFrame:
    frame = read_manifest(folder)
    missing = [c for c in PROVENANCE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{folder}: manifest lacks provenance column {missing[0]} (not a synthetic set)")
    return frame


def _check_images(folder: Path, frame: pd.DataFrame, hashed_only: bool, trust: Path | None) -> list[Verified]:
    """Each row's file against its credential and its row (or, ``hashed_only``, its sha256 alone)."""
    root = folder.resolve()
    checked: list[Verified] = []
    for row in frame.to_dict("records"):
        path = folder / str(row["relpath"])
        if not path.resolve().is_relative_to(root):
            raise DataError(f"{path}: manifest path leaves the folder {folder}")
        if not path.is_file():
            raise DataError(f"{path}: no such file (the manifest lists it)")
        data = path.read_bytes()
        if hashed_only:
            if sha256_bytes(data) != row["sha256"]:
                raise DataError(f"{path}: sha256 differs from its row in the signed manifest")
            continue
        side = path.with_suffix(SIDECAR_SUFFIX)
        verified = verify_bytes(path, data, side.read_bytes() if side.is_file() else None, trust)
        check_row(row, verified, data)
        checked.append(verified)
    return checked


def check_lineage(label: Path, frame: pd.DataFrame, dataset: Path, sources: dict[str, str]) -> dict[str, str]:
    """Every real source the rows name is a train image of ``dataset`` (the one their
    ``source_manifest_sha256`` names) with the sha256 the credentials hold; each source's sha256."""
    from synthdata.data.manifest import verify_dataset

    verified = verify_dataset(dataset)
    named = set(frame["source_manifest_sha256"].astype(str))
    if named != {verified.manifest_sha256}:
        raise DataError(
            f"{label}: made from a dataset with manifest {sorted(named)[0][:16]}..., "
            f"not {dataset} ({verified.manifest_sha256[:16]}...)"
        )
    train = verified.frame[verified.frame["split"] == "train"]
    hashes = dict(zip(train["id"].astype(str), train["sha256"].astype(str), strict=True))
    wanted = {s for joined in frame["source_ids"] for s in source_ids({"source_ids": joined})}
    for source in sorted(wanted):
        if source not in hashes:
            raise DataError(f"{label}: source image {source!r} is not a train image of {dataset}")
        if source in sources and sources[source] != hashes[source]:
            raise DataError(f"{label}: source image {source!r} has another sha256 in {dataset} than in its credential")
    return {source: hashes[source] for source in sorted(wanted)}


def verify_folder(folder: Path, trust_anchors: Path | None = None, dataset: Path | None = None) -> FolderSummary:
    """Check a synthetic set folder (see the module docstring); the first failure is a
    :class:`DataError` naming the file. ``dataset``: where to find the real sources (default:
    ``datasets/<name>`` of the dataset the card names, when it is there)."""
    folder = Path(folder)
    frame = _rows(folder)
    card = read_card(folder) if (folder / CARD_FILE).is_file() else None
    sealed = _check_seal(folder, frame, card, trust_anchors)
    if not sealed and card is not None and card.credentials is not None:  # written by a run that did not sign
        raise DataError(
            f"{folder}: unsigned set (its card records no signer): nothing to verify; "
            "name a signing key in the recipe's provenance.signing and run sample and validate again"
        )
    hashed_only = sealed and (card.credentials or {}).get("credentials") == "dataset"
    checked = _check_images(folder, frame, hashed_only, trust_anchors)
    dataset = dataset or named_dataset(card)
    sources = {k: v for c in checked for k, v in c.sources.items()}
    if dataset is not None:
        sources = check_lineage(folder, frame, dataset, sources)
    return _summary(folder, frame, checked, sealed, hashed_only, trust_anchors, sources, dataset)


def _summary(
    folder: Path,
    frame: pd.DataFrame,
    checked: list[Verified],
    sealed: bool,
    hashed_only: bool,
    trust: Path | None,
    sources: dict[str, str],
    dataset: Path | None,
) -> FolderSummary:
    embedded = sum(v.embedded for v in checked)
    decisions = (
        frame["review_decision"].astype(str) if "review_decision" in frame.columns else pd.Series([], dtype=str)
    )
    reviewers = frame["reviewer"].astype(str) if "reviewer" in frame.columns else pd.Series([], dtype=str)
    return FolderSummary(
        folder=folder,
        images=len(frame),
        embedded=embedded,
        sidecars=len(checked) - embedded,
        signers=tuple(sorted({v.signer for v in checked})),
        trusted=trust is not None,
        source_types=dict(Counter(str(t).rsplit("/", 1)[-1] for t in frame["digital_source_type"])),
        sealed=sealed,
        hashed_only=len(frame) if hashed_only else 0,
        source_hashes=sources,
        lineage=str(dataset) if dataset is not None else "",
        reviewed={k: int(v) for k, v in Counter(decisions[decisions != ""]).items()},
        reviewers=tuple(sorted({r for r in reviewers if r})),
    )


def _shard_members(path: Path) -> dict[str, dict[str, bytes]]:
    """key -> {extension: bytes} of a WebDataset shard's regular files (nothing extracted)."""
    samples: dict[str, dict[str, bytes]] = {}
    try:
        with tarfile.open(path, "r:") as archive:
            for member in archive:
                if not member.isfile():
                    raise DataError(f"{path}: member {member.name!r} is not a regular file")
                key, dot, extension = member.name.rpartition(".")
                if not dot or "/" in key or key.startswith("."):
                    raise DataError(f"{path}: member {member.name!r} is not <key>.<extension>")
                handle = archive.extractfile(member)
                samples.setdefault(key, {})[extension] = handle.read() if handle is not None else b""
    except tarfile.TarError as exc:
        raise DataError(f"{path}: not a readable tar shard ({exc})") from None
    return samples


def verify_shard(path: Path, trust_anchors: Path | None = None) -> FolderSummary:
    """Check every image of a WebDataset shard against its credential (embedded, or ``<key>.c2pa``)
    and against the manifest row stored beside it (``<key>.json``)."""
    path = Path(path)
    checked: list[Verified] = []
    rows: list[dict[str, Any]] = []
    for key, files in sorted(_shard_members(path).items()):
        label = Path(f"{path}:{key}.png")
        if "png" not in files or "json" not in files:
            raise DataError(f"{label}: the shard lacks {key}.png or {key}.json")
        try:
            row = json.loads(files["json"])
        except json.JSONDecodeError:
            raise DataError(f"{path}:{key}.json: not JSON") from None
        if str(row.get("id")) != key:
            raise DataError(f"{path}:{key}.json: its row is image {row.get('id')!r}, not {key!r}")
        verified = verify_bytes(label, files["png"], files.get(SIDECAR_SUFFIX.lstrip(".")), trust_anchors)
        check_row(row, verified, files["png"])
        checked.append(verified)
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: the shard holds no image")
    frame = pd.DataFrame(rows)
    sources = {k: v for c in checked for k, v in c.sources.items()}
    return _summary(path, frame, checked, False, False, trust_anchors, sources, None)
