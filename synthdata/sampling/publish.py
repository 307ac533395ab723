"""Publishing a sampled set: its manifest (checked by the Great Expectations suite),
metadata.csv, optional WebDataset shards, its card and the run's record, renamed into place at once."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import pandas as pd

from synthdata.credentials.sign import ImageSigner, sidecar_paths
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


@dataclass(frozen=True)
class SampledSet:
    """The set a sampling run makes: its images and what determines them."""

    items: list[Item]
    card: DatasetCard
    """The card of the real dataset whose train split the set augments."""
    run_id: str
    plan: QuotaPlan
    settings: SampleSettings
    identity: dict[str, Any]
    """What determines the run's images (hashed into ``run_id``)."""
    recipe_name: str
    signer: ImageSigner | None = None
    """Signs each image and the manifest (None: the set is unsigned)."""

    def build_key(self) -> str:
        """The staging folder's key: the run, its batch size (batches are generated whole, so
        another batch size could change an image's last bits) and who signs how."""
        signed = f"/signed {self.signer.tag}" if self.signer is not None else ""
        return f"{self.run_id}/batch{self.settings.batch_size}{signed}"


def publish_set(writer: DatasetWriter, sampled: SampledSet, common: dict[str, Any], mlflow_run_id: str | None) -> None:
    """Write the set's manifest, metadata.csv, optional WebDataset shards, card and record into
    ``writer``'s staging folder and rename it into place; every item's image must be there.
    ``common``: the provenance fields every image shares
    (:func:`synthdata.sampling.writer.common_provenance`)."""
    staging, settings = writer.staging, sampled.settings
    frame = to_frame(_manifest_rows(writer, sampled, common), synthetic=True)
    keep = [METADATA_FILE, *sidecar_paths(frame, staging)]
    write_metadata_csv(frame, staging)
    if settings.shard_size:
        shards = write_shards(frame, staging, settings.shard_size, prefix="synthetic")
        keep += [p.relative_to(staging).as_posix() for p in shards]
    record = {
        "sample_run_id": sampled.run_id,
        "identity": sampled.identity,
        "plan": sampled.plan.rows(),
        "settings": asdict(settings),
        "mlflow_run_id": mlflow_run_id,
        "images": len(sampled.items),
    }
    synthetic_card = _synthetic_card(writer.target.name, frame, sampled, common)
    signer = sampled.signer
    seal = (
        partial(
            signer.seal, name=synthetic_card.name, manifest_sha256=synthetic_card.manifest_sha256, images=len(frame)
        )
        if signer is not None
        else None
    )
    writer.publish(frame, synthetic_card, {RECORD_FILE: record}, keep=tuple(keep), seal=seal)


def _manifest_rows(writer: DatasetWriter, sampled: SampledSet, common: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item's manifest row, read from its file in the staging folder."""
    staging = writer.staging
    rows = []
    with progress_bar(f"manifest {writer.target.name}", total=len(sampled.items)) as bar:
        for item in sampled.items:
            path = staging / item.relpath
            if not path.is_file():
                raise SynthdataError(
                    f"{path}: missing after every process finished (was a process killed?); run again to resume"
                )
            rows.append(manifest_row(item, sampled.card, common, sampled.run_id, staging))
            bar.advance()
    return rows


def _synthetic_card(name: str, frame: pd.DataFrame, sampled: SampledSet, common: dict[str, Any]) -> DatasetCard:
    """The card of the synthetic set ``name`` whose manifest is ``frame``: the real set's licence,
    citation and image format, and what the images derive from."""
    card, settings = sampled.card, sampled.settings
    counts = {q.name: q.synthetic for q in sampled.plan.classes if q.synthetic}
    return DatasetCard(
        name=name,
        source=SYNTHETIC_SOURCE,
        description=(
            f"Synthetic images for the train split of {card.name}: {len(sampled.items)} images from "
            f"{common['base_id']} adapted to {card.name}, {settings.scheduler} {common['steps']} steps, "
            f"guidance {settings.guidance}. Every image is machine-generated (IPTC digital source type "
            "trainedAlgorithmicMedia); use them for training only, never for evaluation."
        ),
        licence=card.licence,
        citation=card.citation,
        homepage=card.homepage,
        classes=list(card.classes),
        channels=card.channels,
        # the generator's size (a set with no image keeps the dataset's)
        width=int(frame["width"].iloc[0]) if len(frame) else card.width,
        height=int(frame["height"].iloc[0]) if len(frame) else card.height,
        counts={"train": counts},
        manifest_sha256=manifest_hash(frame),
        split_protocol="synthetic: every image is in 'train'",
        derived_from={
            "dataset": card.name,
            "manifest_sha256": card.manifest_sha256,
            "recipe": sampled.recipe_name,
            "base_id": common["base_id"],
            "base_sha256": common["base_sha256"],
            "adapter_sha256": common["adapter_sha256"],
            "sample_run_id": sampled.run_id,
            "sample": asdict(settings),
        },
        created_by=created_by(),
        credentials=sampled.signer.describe(len(frame))
        if sampled.signer is not None
        else {"signed": 0, "signer": None},
    )
