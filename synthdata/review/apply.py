"""A reviewed version of a synthetic set: the rejected images left out, every kept image's review
decision on its manifest row and, for a signed set, in its re-signed credential.

The reviewed set is a new folder (the set reviewed stays as it was); its card names the set it
came from and the decisions file (by sha256), and says who reviewed how many images and how many
they rejected. A signed set is verified before anything is written, and each kept image is
signed again with its generation claim plus an ``org.synthdata.review`` assertion (the pixels
never change; an embedded credential is replaced, a sidecar rewritten) and the new manifest
sealed: a review cannot be applied to a set whose credentials do not check out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from synthdata.atomic import write_bytes
from synthdata.credentials.sign import SIDECAR_SUFFIX, ImageSigner, SigningIdentity, strip_credential
from synthdata.credentials.verify import verify_folder
from synthdata.data.card import DatasetCard
from synthdata.data.manifest import manifest_hash, to_frame, verify_dataset
from synthdata.data.writer import DatasetWriter
from synthdata.errors import DataError
from synthdata.paths import guard_outputs
from synthdata.progress import progress_bar
from synthdata.provenance import created_by
from synthdata.review.decisions import Decisions, read_decisions
from synthdata.sampling.output import METADATA_FILE, SHARDS_DIR, write_metadata_csv, write_shards

RECORD_FILE = "review.json"
RECORDS_KEPT = ("sample.json", "validation.json")
"""The reviewed set's records of how its images were made and validated, carried over."""


@dataclass(frozen=True)
class ReviewedSet:
    out: Path
    decisions: Decisions
    images: int
    """Images in the reviewed set (the set's, less the rejected)."""
    counts: dict[str, int]
    """accept / reject / skip / unreviewed -> images."""
    manifest_sha256: str
    signer: str | None


def _signer(card: DatasetCard, set_folder: Path, identity: SigningIdentity | None) -> ImageSigner | None:
    """Who signs the reviewed set: a signed set must be signed again (its credentials carry the review)."""
    recorded = card.credentials or {}
    if not recorded.get("signer"):
        return None
    if identity is None:
        raise DataError(
            f"{set_folder}: the set is signed ({recorded['signer']}); give a signing key and chain "
            "(--key/--cert-chain, a recipe with provenance.signing, or SYNTHDATA_SIGNING_KEY/_CERT_CHAIN) "
            "so each credential records the review"
        )
    sources = verify_folder(set_folder).source_hashes  # refuses a set whose credentials do not check out
    return ImageSigner(identity, recorded["credentials"], sources)


def _reviewed_rows(
    set_folder: Path, frame: Any, decisions: Decisions, writer: DatasetWriter, signer: ImageSigner | None
) -> None:
    """Each kept image staged with its review columns (and its credential signed again)."""
    with progress_bar(f"review {set_folder.name}", total=len(frame)) as bar:
        for row in frame.to_dict("records"):
            bar.advance()
            decision = decisions.decisions.get(str(row["id"]))
            if decision is not None and decision.decision == "reject":
                continue
            row = {
                **row,
                "review_decision": decision.decision if decision is not None else "unreviewed",
                "reviewer": decisions.reviewer,
                "reviewed_at": decision.at if decision is not None else "",
            }
            data = (set_folder / str(row["relpath"])).read_bytes()
            if signer is not None:
                embedded = signer.credentials == "embedded"
                data, side = signer.sign(strip_credential(data) if embedded else data, row)
                if side is not None:  # before the image: an image that exists has its credential
                    write_bytes((writer.staging / str(row["relpath"])).with_suffix(SIDECAR_SUFFIX), side)
            writer.add(str(row["relpath"]), data, row)


def _shard_size(set_folder: Path) -> int:
    """Images per shard of the set reviewed (0: it has no shards)."""
    first = sorted((set_folder / SHARDS_DIR).glob("*.tar"))
    if not first:
        return 0
    import tarfile

    with tarfile.open(first[0]) as archive:
        return sum(name.endswith(".png") for name in archive.getnames())


def apply_review(
    set_folder: Path, decisions_path: Path, out: Path, identity: SigningIdentity | None = None
) -> ReviewedSet:
    """Publish ``out``: the set in ``set_folder`` without the images ``decisions_path`` rejects."""
    set_folder, out = Path(set_folder), Path(out)
    guard_outputs({"SET": set_folder, "--apply": Path(decisions_path)}, folders={"--out": out})
    verified = verify_dataset(set_folder)
    card, frame = verified.card, verified.frame
    decisions = read_decisions(decisions_path, card.name, verified.manifest_sha256, set(frame["id"].astype(str)))
    signer = _signer(card, set_folder, identity)
    tag = f"/signed {signer.tag}" if signer is not None else ""
    writer = DatasetWriter(out, f"review {decisions.sha256} of {verified.manifest_sha256}{tag}")
    _reviewed_rows(set_folder, frame, decisions, writer, signer)
    reviewed = to_frame(writer.rows, synthetic=True, reviewed=True)
    if reviewed.empty:
        raise DataError(f"{decisions.path}: every image is rejected; nothing to publish")
    keep = [METADATA_FILE]
    write_metadata_csv(reviewed, writer.staging)
    if size := _shard_size(set_folder):
        shards = write_shards(reviewed, writer.staging, size, prefix="reviewed")
        keep += [p.relative_to(writer.staging).as_posix() for p in shards]
    keep += [p.relative_to(writer.staging).as_posix() for p in writer.staging.rglob(f"*{SIDECAR_SUFFIX}")]
    counts = {d: decisions.count(d) for d in ("accept", "reject", "skip")}
    counts["unreviewed"] = len(frame) - len(decisions.decisions)
    new_card = _reviewed_card(out.name, card, reviewed, decisions, counts, signer)
    records = {
        name: json.loads((set_folder / name).read_text()) for name in RECORDS_KEPT if (set_folder / name).is_file()
    }
    records[RECORD_FILE] = _record(decisions, counts, frame, verified.manifest_sha256, set_folder)
    seal = (
        partial(signer.seal, name=new_card.name, manifest_sha256=new_card.manifest_sha256, images=len(reviewed))
        if signer is not None
        else None
    )
    writer.publish(reviewed, new_card, records, keep=tuple(keep), seal=seal)
    return ReviewedSet(
        out, decisions, len(reviewed), counts, new_card.manifest_sha256, signer.identity.subject if signer else None
    )


def _reviewed_card(
    name: str,
    card: DatasetCard,
    reviewed: Any,
    decisions: Decisions,
    counts: dict[str, int],
    signer: ImageSigner | None,
) -> DatasetCard:
    totals = reviewed.groupby("label_name").size().to_dict()
    return replace(
        card,
        name=name,
        description=f"{card.description} Reviewed by {decisions.reviewer}: {counts['reject']} of "
        f"{sum(counts.values())} images rejected and left out.",
        counts={"train": {k: int(v) for k, v in totals.items()}},
        manifest_sha256=manifest_hash(reviewed),
        derived_from={
            **(card.derived_from or {}),
            "reviewed_set": card.name,
            "reviewed_set_manifest_sha256": decisions.set_manifest_sha256,
        },
        created_by=created_by(),
        credentials=signer.describe(len(reviewed)) if signer is not None else {"signed": 0, "signer": None},
        review={
            "reviewer": decisions.reviewer,
            "reviewed_at": decisions.exported_at,
            "images": sum(counts.values()),
            "reviewed": len(decisions.decisions),
            "accepted": counts["accept"],
            "rejected": counts["reject"],
            "skipped": counts["skip"],
            "unreviewed": counts["unreviewed"],
            "decisions_sha256": decisions.sha256,
        },
    )


def _record(
    decisions: Decisions, counts: dict[str, int], frame: Any, set_sha: str, set_folder: Path
) -> dict[str, Any]:
    """``review.json``: who decided what, when, about which set; the rejected images by id."""
    rejected = sorted(i for i, d in decisions.decisions.items() if d.decision == "reject")
    return {
        "set": str(set_folder.name),
        "set_manifest_sha256": set_sha,
        "reviewer": decisions.reviewer,
        "exported_at": decisions.exported_at,
        "decisions_file": decisions.path.name,
        "decisions_sha256": decisions.sha256,
        "counts": counts,
        "rejected": rejected,
        "decisions": {i: {"decision": d.decision, "at": d.at} for i, d in sorted(decisions.decisions.items())},
    }
