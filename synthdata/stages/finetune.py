"""Stage: adapt the base to a recipe's (long-tailed) train split with LoRA, full or scratch."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path

from synthdata.config.recipe import FinetuneSettings, Recipe
from synthdata.data.card import read_card
from synthdata.models.adapter import AdaptedModel, adapt, save_adapter, weights_file
from synthdata.models.backbone import PixelBackbone
from synthdata.models.base import UNetSettings, load_base
from synthdata.provenance import created_by
from synthdata.reporting.plots import loss_curve
from synthdata.stages.pretrain import hardware, recorded_run_id, sample_grid
from synthdata.tracking.mlflow_run import stage_run
from synthdata.training.checkpoint import discard_if_stale
from synthdata.training.loop import TrainResult, train_denoiser
from synthdata.training.tensors import load_split


def run_finetune(
    recipe: Recipe, dataset: Path, out: Path, workdir: Path, *, stop_after: int | None = None
) -> tuple[TrainResult, AdaptedModel]:
    settings: FinetuneSettings = recipe.finetune
    base = load_base(settings.base)
    architecture = UNetSettings(**base.record["unet"])
    images, labels, classes = load_split(dataset, "train", size=architecture.sample_size, channels=architecture.channels)
    card = read_card(dataset)
    model = adapt(base, classes, settings.adapter, seed=settings.train.seed)
    trainable = model.trainable()
    fingerprint = hashlib.sha256(
        json.dumps([asdict(settings), card.manifest_sha256, base.sha256], sort_keys=True).encode()
    ).hexdigest()
    discard_if_stale(workdir, fingerprint)
    params = {"finetune": asdict(settings), "dataset": dataset.name}
    with stage_run("finetune", recipe.name, params, resume_run_id=recorded_run_id(workdir)) as run:
        import mlflow

        mlflow.set_tags({"manifest_sha256": card.manifest_sha256, "base_sha256": base.sha256, "mode": model.mode})
        backbone = PixelBackbone(model.unet, null_class=model.null_class)
        result = train_denoiser(
            backbone, trainable, images, labels, base.scheduler, settings.train, workdir,
            record={"mlflow_run_id": run.info.run_id, "fingerprint": fingerprint},
            log=lambda m, s: mlflow.log_metrics(m, step=s), stop_after=stop_after,
        )  # fmt: skip
        if result.steps < settings.train.steps:
            return result, model
        record = {
            "recipe": recipe.name,
            "dataset": dataset.name,
            "dataset_manifest_sha256": card.manifest_sha256,
            "base_path": str(base.path),
            "scheduler": dict(base.scheduler.config),
            "sample_size": architecture.sample_size,
            "channels": architecture.channels,
            "adapter": asdict(settings.adapter),
            "train": asdict(settings.train),
            "steps": result.steps,
            "train_seconds": round(result.seconds, 1),
            "hardware": hardware(),
            "mlflow_run_id": run.info.run_id,
            "created_by": created_by(),
        }
        sha = save_adapter(model, out, record)
        grid = sample_grid(backbone, base.scheduler, classes, workdir / "samples.png",
                           size=architecture.sample_size, channels=architecture.channels)  # fmt: skip
        shutil.copyfile(grid, out / "samples.png")
        curve = loss_curve(result.losses, out / "loss.png", title=f"{recipe.name} {model.mode} fine-tune")
        mlflow.log_artifact(str(curve), artifact_path="plots")
        size = (out / weights_file(model.mode)).stat().st_size
        trainable_count = sum(p.numel() for p in trainable.values())
        total = sum(p.numel() for p in model.unet.parameters())
        mlflow.set_tag("adapter_sha256", sha)
        mlflow.log_metrics({
            "trainable_parameters": trainable_count, "trainable_fraction": trainable_count / total,
            "adapter_bytes": size, "images_per_second": result.images_per_second, "train_seconds": result.seconds,
        })  # fmt: skip
        mlflow.log_artifact(str(grid), artifact_path="samples")
    return result, model
