"""Publishing a sampled set: its manifest (checked by the Great Expectations suite),
metadata.csv, optional WebDataset shards, its card and the run's record, renamed into place at once."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from synthdata.data.card import DatasetCard
from synthdata.data.manifest import SYNTHETIC_SOURCE, manifest_hash, to_frame
from synthdata.data.writer import DatasetWriter
from synthdata.errors import SynthdataError
from synthdata.progress import progress_bar
from synthdata.provenance import created_by
from synthdata.sampling.jobs import Item
from synthdata.sampling.output import METADATA_FILE, RECORD_FILE, write_metadata_csv, write_shards
from synthdata.sampling.quotas import QuotaPlan
from synthdata.sampling.settings import SampleSettings
from synthdata.sampling.writer import manifest_row


def publish_set(
    writer: DatasetWriter,
    items: list[Item],
    card: DatasetCard,
    common: dict[str, Any],
    run_id: str,
    plan: QuotaPlan,
    settings: SampleSettings,
    identity: dict[str, Any],
    recipe_name: str,
    mlflow_run_id: str | None,
) -> None:
    staging = writer.staging
    rows = []
    with progress_bar(f"manifest {writer.target.name}", total=len(items)) as bar:
        for item in items:
            path = staging / item.relpath
            if not path.is_file():
                raise SynthdataError(
                    f"{path}: missing after every process finished (was a process killed?); run again to resume"
                )
            rows.append(manifest_row(item, card, common, run_id, staging))
            bar.advance()
    frame = to_frame(rows, synthetic=True)
    keep = [METADATA_FILE]
    write_metadata_csv(frame, staging)
    if settings.shard_size:
        shards = write_shards(frame, staging, settings.shard_size, prefix="synthetic")
        keep += [p.relative_to(staging).as_posix() for p in shards]
    counts = {q.name: q.synthetic for q in plan.classes if q.synthetic}
    synthetic_card = DatasetCard(
        name=writer.target.name,
        source=SYNTHETIC_SOURCE,
        description=(
            f"Synthetic images for the train split of {card.name}: {len(items)} images from {common['base_id']} "
            f"adapted to {card.name}, {settings.scheduler} {common['steps']} steps, guidance {settings.guidance}. "
            "Every image is machine-generated (IPTC digital source type trainedAlgorithmicMedia); use them for "
            "training only, never for evaluation."
        ),
        licence=card.licence,
        citation=card.citation,
        homepage=card.homepage,
        classes=list(card.classes),
        channels=card.channels,
        width=card.width,
        height=card.height,
        counts={"train": counts},
        manifest_sha256=manifest_hash(frame),
        split_protocol="synthetic: every image is in 'train'",
        derived_from={
            "dataset": card.name,
            "manifest_sha256": card.manifest_sha256,
            "recipe": recipe_name,
            "base_id": common["base_id"],
            "base_sha256": common["base_sha256"],
            "adapter_sha256": common["adapter_sha256"],
            "sample_run_id": run_id,
            "sample": asdict(settings),
        },
        created_by=created_by(),
    )
    record = {
        "sample_run_id": run_id,
        "identity": identity,
        "plan": plan.rows(),
        "settings": asdict(settings),
        "mlflow_run_id": mlflow_run_id,
        "images": len(items),
    }
    writer.publish(frame, synthetic_card, {RECORD_FILE: record}, keep=tuple(keep))
