"""Generate batches of a sampling job and write each image with its provenance.

A batch is generated whole (one generator per image) and only the images missing from the
folder are written, each under a temporary name then renamed: a killed run resumes where it
stopped and makes the same bytes. The manifest row of an image is its identity (id, class,
index, seed), the run's shared settings and its lineage (mode, strength, source ids,
interpolation weight); the PNG carries the same fields as text chunks and, when the run signs,
a C2PA Content Credential (embedded, or a ``<id>.c2pa`` sidecar written before the PNG, so an
image that exists has its credential).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from synthdata.atomic import write_bytes
from synthdata.credentials.sign import SIDECAR_SUFFIX, ImageSigner
from synthdata.data.card import DatasetCard
from synthdata.data.images import encode_png
from synthdata.data.manifest import SYNTHETIC_SOURCE, source_type
from synthdata.data.tensors import to_uint8, to_unit_range
from synthdata.hashing import sha256_bytes
from synthdata.progress import progress_bar
from synthdata.provenance import created_by
from synthdata.sampling.anchors import SourcePool
from synthdata.sampling.generate import generate
from synthdata.sampling.jobs import Item
from synthdata.sampling.model import SamplingModel
from synthdata.sampling.output import png_text, to_dataset_format, xmp_packet
from synthdata.sampling.settings import SampleSettings


def common_provenance(
    model: SamplingModel, settings: SampleSettings, card: DatasetCard, run_id: str
) -> dict[str, Any]:
    """The provenance fields every image of a run shares."""
    steps = int(model.scheduler.config.num_train_timesteps) if settings.scheduler == "ddpm" else settings.steps
    made_by = created_by()
    return {
        "base_id": model.base_id,
        "base_sha256": model.base_sha256,
        "adapter_sha256": model.adapter_sha256,
        "sample_run_id": run_id,
        "scheduler": settings.scheduler,
        "steps": steps,
        "guidance": float(settings.guidance),
        "synthdata_version": made_by["synthdata"],
        "git_commit": made_by["git_commit"],
        "source_manifest_sha256": card.manifest_sha256,
    }


def lineage(item: Item) -> dict[str, Any]:
    """The lineage columns of an image."""
    return {
        "digital_source_type": source_type(item.mode),
        "mode": item.mode,
        "strength": float(item.strength),
        "source_ids": ";".join(item.sources),
        "interpolation_weight": float(item.weight),
    }


def image_row(
    item: Item, card: DatasetCard, common: dict[str, Any], run_id: str, size: tuple[int, int]
) -> dict[str, Any]:
    """A manifest row without its sha256 (known once the file is written); ``size`` is the
    image's (width, height), the generator's."""
    return {
        "id": item.id,
        "relpath": item.relpath,
        "label": item.label,
        "label_name": item.name,
        "split": "train",
        "width": size[0],
        "height": size[1],
        "channels": card.channels,
        "source": SYNTHETIC_SOURCE,
        "licence": card.licence,
        "origin": f"{run_id}/{item.name}/{item.index}",
        "group": "",
        **common,
        "sample_index": item.index,
        "seed": item.seed,
        **lineage(item),
    }


def manifest_row(item: Item, card: DatasetCard, common: dict[str, Any], run_id: str, folder: Path) -> dict[str, Any]:
    """The complete manifest row of an image written in ``folder`` (its file read once)."""
    data = (folder / item.relpath).read_bytes()
    with Image.open(io.BytesIO(data)) as image:  # the size from the header, no decoding
        size = image.size
    return {**image_row(item, card, common, run_id, size), "sha256": sha256_bytes(data)}


def _anchors(batch: list[Item], images: dict[str, torch.Tensor]) -> dict[str, Any]:
    """generate()'s source arguments for a batch (none in noise mode)."""
    if not any(item.sources for item in batch):
        return {}
    if not all(item.sources for item in batch):
        raise ValueError("a batch mixes images with and without a source")
    sources = to_unit_range(torch.stack([images[item.sources[0]] for item in batch]))
    anchors: dict[str, Any] = {"sources": sources, "strengths": [item.strength for item in batch]}
    if any(len(item.sources) > 1 for item in batch):
        anchors["partners"] = to_unit_range(torch.stack([images[item.sources[-1]] for item in batch]))
        anchors["weights"] = [item.weight for item in batch]
    return anchors


def make_batch(
    model: SamplingModel,
    batch: list[Item],
    settings: SampleSettings,
    card: DatasetCard,
    common: dict[str, Any],
    run_id: str,
    folder: Path,
    images: dict[str, torch.Tensor],
    signer: ImageSigner | None = None,
) -> int:
    """Generate one batch whole and write the images it lacks (signed by ``signer`` when
    given); returns how many were written."""
    missing = [item for item in batch if not (folder / item.relpath).is_file()]
    if not missing:
        return 0
    labels = torch.tensor([item.label for item in batch], dtype=torch.int64)
    generators = [torch.Generator().manual_seed(item.seed) for item in batch]
    samples = generate(
        model.backbone,
        model.scheduler,
        labels,
        shape=model.shape,
        scheduler=settings.scheduler,
        steps=settings.steps,
        guidance=settings.guidance,
        generator=generators,
        guide=model.guide,
        **_anchors(batch, images),
    )
    pixels = to_uint8(samples).numpy()
    wanted = {item.id for item in missing}
    for item, image in zip(batch, pixels, strict=True):
        if item.id in wanted:
            array = to_dataset_format(image, card.channels)
            row = image_row(item, card, common, run_id, (array.shape[1], array.shape[0]))
            xmp = xmp_packet(common["synthdata_version"], row["digital_source_type"])
            png = encode_png(array, png_text(row), xmp=xmp)
            if signer is not None:
                png, side = signer.sign(png, row)
                if side is not None:
                    write_bytes((folder / item.relpath).with_suffix(SIDECAR_SUFFIX), side)
            write_bytes(folder / item.relpath, png)
    return len(missing)


def write_batches(
    model: SamplingModel,
    work: list[list[Item]],
    settings: SampleSettings,
    card: DatasetCard,
    common: dict[str, Any],
    run_id: str,
    folder: Path,
    *,
    description: str,
    pool: SourcePool | None = None,
    signer: ImageSigner | None = None,
) -> int:
    """Make every batch of ``work`` that lacks an image in ``folder``; returns images written.
    ``pool`` gives the source pixels of real-anchored items (read once, for the batches to make);
    ``signer`` signs each image as it is written."""
    todo = [batch for batch in work if any(not (folder / item.relpath).is_file() for item in batch)]
    ids = sorted({source for batch in todo for item in batch for source in item.sources})
    if ids and pool is None:
        raise ValueError("real-anchored items need a source pool")
    images = pool.load(ids) if ids and pool is not None else {}
    generated = 0
    with progress_bar(description, total=sum(len(b) for b in work)) as bar:
        for batch in work:
            generated += make_batch(model, batch, settings, card, common, run_id, folder, images, signer)
            bar.advance(len(batch))
    return generated
