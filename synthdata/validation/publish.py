"""Publishing an accepted set: the originals beside the replacements, metadata.csv, shards, a
dataset card and a Croissant card, all written under a temporary name and renamed at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from synthdata.atomic import write_bytes
from synthdata.data.card import DatasetCard, read_card
from synthdata.data.manifest import MANIFEST_FILE, SYNTHETIC_SOURCE, manifest_hash, to_frame, write_manifest
from synthdata.data.writer import DatasetWriter
from synthdata.hashing import file_sha256
from synthdata.provenance import created_by
from synthdata.sampling.output import METADATA_FILE, write_metadata_csv, write_shards
from synthdata.validation.croissant import croissant, write_croissant
from synthdata.validation.figures import ValidationFigures, jsonable


def publish_accepted(
    writer: DatasetWriter,
    synthetic: Path,
    accepted: pd.DataFrame,
    card: DatasetCard,
    sample_record: dict[str, Any],
    dropped: dict[str, dict[str, int]],
    figures: ValidationFigures,
) -> None:
    """Copy the accepted originals beside the replacements (already staged), then publish."""
    staging = writer.staging
    for folder, relpath in zip(accepted["_folder"], accepted["relpath"], strict=True):
        target = staging / relpath
        if Path(folder) != staging and not target.is_file():
            write_bytes(target, (Path(folder) / relpath).read_bytes())
    frame = to_frame(accepted.drop(columns=["_folder"]).to_dict(orient="records"), synthetic=True)
    write_metadata_csv(frame, staging)
    keep = [METADATA_FILE]
    shard_size = int(sample_record["settings"].get("shard_size", 0))
    if shard_size:
        keep += [
            p.relative_to(staging).as_posix() for p in write_shards(frame, staging, shard_size, prefix="validated")
        ]
    source = read_card(synthetic)
    counts = frame.groupby("label_name").size().to_dict()
    gaps = [
        f"{attribute} of {cls}: the accepted set leaves real-data bins {entry['gaps']} nearly empty"
        for attribute, data in figures.attributes.items()
        for cls, entry in data["classes"].items()
        if entry["gaps"]
    ]
    validated = DatasetCard(
        name=writer.target.name,
        source=SYNTHETIC_SOURCE,
        description=f"Validated synthetic images for the train split of {card.name}: {len(frame)} accepted of "
        f"{sum(sum(d.values()) for d in dropped.values()) + len(frame)} judged.",
        licence=source.licence,
        citation=source.citation,
        homepage=source.homepage,
        classes=list(card.classes),
        channels=card.channels,
        width=card.width,
        height=card.height,
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
    shards = [k for k in keep if k.startswith("shards/")]
    # The card declares the manifest file's own checksum: write it now (publish writes the same bytes).
    write_manifest(frame, staging)
    document = croissant(
        validated,
        card,
        manifest_file_sha256=file_sha256(staging / MANIFEST_FILE),
        shards=shards,
        dropped=dropped,
        known_gaps=gaps[:20],
    )
    write_croissant(staging, document)
    keep.append("croissant.json")
    writer.publish(
        frame,
        validated,
        {"validation.json": jsonable({k: getattr(figures, k) for k in ("filter", "memorisation", "passed", "gates")})},
        keep=tuple(keep),
    )
