"""Stage: pretrain a class-conditional pixel base on a generic corpus (CIFAR-10 train split)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from synthdata.atomic import build_folder
from synthdata.config.recipe import PretrainSettings, Recipe
from synthdata.data.card import DatasetCard
from synthdata.data.manifest import verify_dataset
from synthdata.data.tensors import load_split
from synthdata.models.backbone import PixelBackbone
from synthdata.models.base import build_scheduler, build_unet, write_base
from synthdata.provenance import created_by, hardware
from synthdata.reporting.plots import loss_curve
from synthdata.reporting.samples import sample_grid
from synthdata.tracking.mlflow_run import StageRun, stage_run
from synthdata.training.checkpoint import recorded_run_id
from synthdata.training.loop import TrainResult, train_denoiser


@dataclass
class _Base:
    """The base being pretrained: its network, noise schedule, the backbone that trains and
    samples it, and its class names (one more class index, ``len(classes)``, is the null class)."""

    unet: torch.nn.Module
    scheduler: Any
    backbone: PixelBackbone
    classes: list[str]


def run_pretrain(
    recipe: Recipe, dataset: Path, out: Path, workdir: Path, *, stop_after: int | None = None
) -> TrainResult:
    settings: PretrainSettings = recipe.pretrain or PretrainSettings()
    card = verify_dataset(dataset).card
    images, labels, classes = load_split(
        dataset, "train", size=settings.unet.sample_size, channels=settings.unet.channels
    )
    torch.manual_seed(settings.train.seed)  # the initial weights: the same recipe gives the same base
    unet = build_unet(settings.unet, len(classes))
    base = _Base(unet, build_scheduler(), PixelBackbone(unet, null_class=len(classes)), classes)
    trainable = dict(unet.named_parameters())
    resume_id = recorded_run_id(workdir)
    with stage_run(
        "pretrain", recipe.name, {"pretrain": asdict(settings)}, resume_run_id=resume_id, output=out
    ) as run:
        run.set_tags({"manifest_sha256": card.manifest_sha256})
        result = train_denoiser(
            base.backbone,
            trainable,
            images,
            labels,
            base.scheduler,
            settings.train,
            workdir,
            record={"mlflow_run_id": run.run_id},
            log=lambda m, s: run.log_metrics(m, step=s),
            stop_after=stop_after,
        )
        run.log_metrics({"images_per_second": result.images_per_second, "train_seconds": result.seconds})
        if result.steps < settings.train.steps:
            return result
        record = _base_record(settings, card, base, len(images), result, run.run_id)
        build_folder(out, lambda staging: _build_base(staging, run, recipe.name, settings, base, result, record))
    return result


def _base_record(
    settings: PretrainSettings, card: DatasetCard, base: _Base, train_images: int, result: TrainResult, run_id: str
) -> dict[str, Any]:
    """The base's record: its classes, the corpus it learnt, its architecture, training and maker."""
    return {
        "kind": "synthdata-pixel-base",
        "classes": base.classes,
        "null_class": len(base.classes),
        "corpus": card.name,
        "corpus_manifest_sha256": card.manifest_sha256,
        "train_images": train_images,
        "unet": asdict(settings.unet),
        "train": asdict(settings.train),
        "steps": result.steps,
        "train_seconds": round(result.seconds, 1),
        "hardware": hardware(),
        "parameters": sum(p.numel() for p in base.unet.parameters()),
        "final_loss": result.losses[-1][1] if result.losses else None,
        "mlflow_run_id": run_id,
        "created_by": created_by(),
    }


def _build_base(
    staging: Path,
    run: StageRun,
    recipe: str,
    settings: PretrainSettings,
    base: _Base,
    result: TrainResult,
    record: dict[str, Any],
) -> list[Path]:
    """Write the base, its sample grid and loss curve into ``staging``; MLflow takes the last two."""
    size = settings.unet.sample_size
    sha = write_base(base.unet, base.scheduler, record, staging)
    grid = sample_grid(
        base.backbone,
        base.scheduler,
        base.classes,
        staging / "samples.png",
        guidance=settings.sample_guidance,
        shape=(settings.unet.channels, size, size),
    )
    curve = loss_curve(result.losses, staging / "loss.png", title=f"{recipe} pretraining")
    run.set_tags({"base_sha256": sha})
    run.log_artifact(grid, "samples")
    run.log_artifact(curve, "plots")
    return [grid, curve]
