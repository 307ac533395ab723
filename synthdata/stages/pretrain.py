"""Stage: pretrain a class-conditional pixel base on a generic corpus (CIFAR-10 train split)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from synthdata.atomic import build_folder
from synthdata.config.recipe import PretrainSettings, Recipe
from synthdata.data.manifest import verify_dataset
from synthdata.data.tensors import load_split
from synthdata.models.backbone import PixelBackbone
from synthdata.models.base import build_scheduler, build_unet, write_base
from synthdata.provenance import created_by, hardware
from synthdata.reporting.plots import loss_curve
from synthdata.reporting.samples import sample_grid
from synthdata.tracking.mlflow_run import stage_run
from synthdata.training.checkpoint import recorded_run_id
from synthdata.training.loop import TrainResult, train_denoiser


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
    scheduler = build_scheduler()
    backbone = PixelBackbone(unet, null_class=len(classes))
    trainable = dict(unet.named_parameters())
    resume_id = recorded_run_id(workdir)
    with stage_run(
        "pretrain", recipe.name, {"pretrain": asdict(settings)}, resume_run_id=resume_id, output=out
    ) as run:
        run.set_tags({"manifest_sha256": card.manifest_sha256})
        result = train_denoiser(
            backbone,
            trainable,
            images,
            labels,
            scheduler,
            settings.train,
            workdir,
            record={"mlflow_run_id": run.run_id},
            log=lambda m, s: run.log_metrics(m, step=s),
            stop_after=stop_after,
        )
        run.log_metrics({"images_per_second": result.images_per_second, "train_seconds": result.seconds})
        if result.steps < settings.train.steps:
            return result
        record = {
            "kind": "synthdata-pixel-base",
            "classes": classes,
            "null_class": len(classes),
            "corpus": card.name,
            "corpus_manifest_sha256": card.manifest_sha256,
            "train_images": len(images),
            "unet": asdict(settings.unet),
            "train": asdict(settings.train),
            "steps": result.steps,
            "train_seconds": round(result.seconds, 1),
            "hardware": hardware(),
            "parameters": sum(p.numel() for p in unet.parameters()),
            "final_loss": result.losses[-1][1] if result.losses else None,
            "mlflow_run_id": run.run_id,
            "created_by": created_by(),
        }
        size = settings.unet.sample_size

        def build(staging: Path) -> list[Path]:
            sha = write_base(unet, scheduler, record, staging)
            grid = sample_grid(
                backbone,
                scheduler,
                classes,
                staging / "samples.png",
                guidance=settings.sample_guidance,
                shape=(settings.unet.channels, size, size),
            )
            curve = loss_curve(result.losses, staging / "loss.png", title=f"{recipe.name} pretraining")
            run.set_tags({"base_sha256": sha})
            run.log_artifact(grid, "samples")
            run.log_artifact(curve, "plots")
            return [grid, curve]

        build_folder(out, build)
    return result
