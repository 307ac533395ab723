"""Publishing an accepted set: the originals beside the replacements, metadata.csv, shards, a
dataset card and a Croissant card, all written under a temporary name and renamed at once."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from synthdata.atomic import write_bytes
from synthdata.credentials.sign import SIDECAR_SUFFIX, ImageSigner, sidecar_paths
from synthdata.data.card import DatasetCard, read_card
from synthdata.data.manifest import MANIFEST_FILE, SYNTHETIC_SOURCE, manifest_hash, to_frame, write_manifest
from synthdata.data.writer import DatasetWriter
from synthdata.hashing import file_sha256
from synthdata.provenance import created_by
from synthdata.sampling.output import METADATA_FILE, write_metadata_csv, write_shards
from synthdata.validation.croissant import CROISSANT_FILE, croissant, write_croissant
from synthdata.validation.figures import ValidationFigures, jsonable


def publish_accepted(
    writer: DatasetWriter,
    synthetic: Path,
    accepted: pd.DataFrame,
    card: DatasetCard,
    sample_record: dict[str, Any],
    dropped: dict[str, dict[str, int]],
    figures: ValidationFigures,
    signer: ImageSigner | None = None,
) -> None:
    """Copy the accepted originals (and their sidecar credentials) beside the replacements
    (already staged, signed by ``signer`` as the originals are), then publish; a signed set's
    manifest is signed too."""
    staging = writer.staging
    _stage_originals(staging, accepted)
    frame = to_frame(accepted.drop(columns=["_folder"]).to_dict(orient="records"), synthetic=True)
    keep = _write_listings(frame, staging, int(sample_record["settings"].get("shard_size", 0)))
    keep += sidecar_paths(frame, staging)
    validated = _validated_card(writer.target.name, card, read_card(synthetic), frame, dropped, figures)
    validated.credentials = signer.describe(len(frame)) if signer is not None else {"signed": 0, "signer": None}
    shards = [k for k in keep if k.startswith("shards/")]
    keep.append(_write_croissant_card(staging, frame, validated, card, shards, dropped, _known_gaps(figures)[:20]))
    seal = (
        partial(signer.seal, name=validated.name, manifest_sha256=validated.manifest_sha256, images=len(frame))
        if signer is not None
        else None
    )
    writer.publish(
        frame,
        validated,
        {"validation.json": jsonable({k: getattr(figures, k) for k in ("filter", "memorisation", "passed", "gates")})},
        keep=tuple(keep),
        seal=seal,
    )


def _stage_originals(staging: Path, accepted: pd.DataFrame) -> None:
    """Copy each accepted image not made in staging (an original of the sample run) into it."""
    for folder, relpath in zip(accepted["_folder"], accepted["relpath"], strict=True):
        target = staging / relpath
        if Path(folder) != staging and not target.is_file():
            side = (Path(folder) / relpath).with_suffix(SIDECAR_SUFFIX)
            if side.is_file():  # before the image: an image that exists has its credential
                write_bytes(target.with_suffix(SIDECAR_SUFFIX), side.read_bytes())
            write_bytes(target, (Path(folder) / relpath).read_bytes())


def _write_listings(frame: pd.DataFrame, staging: Path, shard_size: int) -> list[str]:
    """metadata.csv and, with a shard size, the WebDataset shards; their paths in staging."""
    write_metadata_csv(frame, staging)
    keep = [METADATA_FILE]
    if shard_size:
        keep += [
            p.relative_to(staging).as_posix() for p in write_shards(frame, staging, shard_size, prefix="validated")
        ]
    return keep


def _known_gaps(figures: ValidationFigures) -> list[str]:
    """Each class's attribute bins the accepted set leaves nearly empty, in words."""
    return [
        f"{attribute} of {cls}: the accepted set leaves real-data bins {entry['gaps']} nearly empty"
        for attribute, data in figures.attributes.items()
        for cls, entry in data["classes"].items()
        if entry["gaps"]
    ]


def _validated_card(
    name: str,
    card: DatasetCard,
    source: DatasetCard,
    frame: pd.DataFrame,
    dropped: dict[str, dict[str, int]],
    figures: ValidationFigures,
) -> DatasetCard:
    """The card of the accepted set ``frame``, made from the real set ``card`` by the sample run
    whose card is ``source``."""
    counts = frame.groupby("label_name").size().to_dict()
    return DatasetCard(
        name=name,
        source=SYNTHETIC_SOURCE,
        description=f"Validated synthetic images for the train split of {card.name}: {len(frame)} accepted of "
        f"{sum(sum(d.values()) for d in dropped.values()) + len(frame)} judged.",
        licence=source.licence,
        citation=source.citation,
        homepage=source.homepage,
        classes=list(card.classes),
        channels=card.channels,
        width=source.width,
        height=source.height,
        counts={"train": {k: int(v) for k, v in counts.items()}},
        manifest_sha256=manifest_hash(frame),
        split_protocol="synthetic: every image is in 'train'",
        derived_from={
            **(source.derived_from or {}),
            "synthetic_set": source.name,
            "synthetic_manifest_sha256": source.manifest_sha256,
            "validation": {"dropped": dropped, "passed": figures.passed},
        },
        created_by=created_by(),
    )


def _write_croissant_card(
    staging: Path,
    frame: pd.DataFrame,
    validated: DatasetCard,
    card: DatasetCard,
    shards: list[str],
    dropped: dict[str, dict[str, int]],
    known_gaps: list[str],
) -> str:
    """Write ``croissant.json`` into staging; its name, for the files to keep."""
    # The card declares the manifest file's own checksum: write it now (publish writes the same bytes).
    write_manifest(frame, staging)
    document = croissant(
        validated,
        card,
        manifest_file_sha256=file_sha256(staging / MANIFEST_FILE),
        shards=shards,
        dropped=dropped,
        known_gaps=known_gaps,
    )
    write_croissant(staging, document)
    return CROISSANT_FILE
