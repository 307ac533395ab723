"""Stage: adapt a base to a recipe's (long-tailed) train split: LoRA, full or scratch.

The base is the shipped pixel base, another synthdata base folder, or a Stable Diffusion
folder (LoRA only; classes become prompts).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from synthdata.atomic import build_folder
from synthdata.config.recipe import FinetuneSettings, Recipe
from synthdata.data.manifest import verify_dataset
from synthdata.data.tensors import load_split
from synthdata.models.adapter import (
    AdaptedModel,
    adapt,
    adapt_stable_diffusion,
    read_adapter_record,
    weights_file,
    write_adapter,
)
from synthdata.models.backbone import PixelBackbone
from synthdata.models.base import DEFAULT_BASE, UNetSettings, load_base
from synthdata.models.stable_diffusion import (
    class_prompts,
    is_stable_diffusion,
    load_stable_diffusion,
    stable_diffusion_backbone,
)
from synthdata.provenance import created_by, hardware
from synthdata.reporting.plots import loss_curve
from synthdata.reporting.samples import sample_grid
from synthdata.reporting.stage_files import StageFiles
from synthdata.tracking.lineage import log_dataset, register_adapter
from synthdata.tracking.mlflow_run import StageRun, stage_run
from synthdata.training.checkpoint import discard_if_stale, recorded_run_id
from synthdata.training.loop import TrainResult, train_denoiser


@dataclass
class _Prepared:
    model: AdaptedModel
    backbone: Any
    scheduler: Any
    images: Any
    labels: Any
    sample_shape: tuple[int, int, int]
    """One sample in the backbone's training space (pixels, or latents for Stable Diffusion)."""
    record: dict[str, Any]


def _prepare(recipe: Recipe, dataset: Path) -> _Prepared:
    settings = recipe.finetune
    base_path = Path(settings.base) if settings.base else DEFAULT_BASE
    if is_stable_diffusion(base_path):
        parts = load_stable_diffusion(base_path)
        size = int(parts.vae.config.sample_size)
        images, labels, classes = load_split(dataset, "train", size=size, channels=3)
        prompts = class_prompts(classes, recipe.domain)
        model = adapt_stable_diffusion(parts, classes, prompts, settings.adapter)
        backbone = stable_diffusion_backbone(parts, prompts)
        backbone.unet = model.unet
        latent = int(parts.unet.config.sample_size)
        shape = (int(parts.unet.config.in_channels), latent, latent)
        return _Prepared(
            model,
            backbone,
            parts.scheduler,
            images,
            labels,
            shape,
            {"base_path": str(base_path), "sample_size": size, "channels": 3, "prompts": prompts},
        )
    base = load_base(base_path)
    architecture = UNetSettings(**base.record["unet"])
    size, channels = architecture.sample_size, architecture.channels
    images, labels, classes = load_split(dataset, "train", size=size, channels=channels)
    model = adapt(base, classes, settings.adapter, seed=settings.train.seed)
    backbone = PixelBackbone(model.unet, null_class=model.null_class)
    return _Prepared(
        model,
        backbone,
        base.scheduler,
        images,
        labels,
        (channels, size, size),
        {"base_path": str(base_path), "sample_size": size, "channels": channels},
    )


def run_finetune(
    recipe: Recipe,
    dataset: Path,
    out: Path,
    workdir: Path,
    *,
    stop_after: int | None = None,
    files: StageFiles | None = None,
) -> tuple[TrainResult, AdaptedModel]:
    """Train (resuming a killed run's checkpoint) and publish the adapter folder ``out`` whole:
    weights, record, sample grid and loss curve are built beside it and renamed in last, after
    MLflow has taken the run's figures, so an interruption anywhere leaves no partial adapter.
    ``files`` takes the headline (the last logged loss) and the loss curve as a data plot."""
    settings: FinetuneSettings = recipe.finetune
    verified = verify_dataset(dataset)
    manifest_sha256 = verified.manifest_sha256
    prepared = _prepare(recipe, dataset)
    # A dataset at another size than the base's is resized through (load_split), and the record
    # says both sizes: the adapter learns, and the sampler makes, images at the base's size.
    prepared.record["dataset_size"] = [verified.card.width, verified.card.height]
    model = prepared.model
    trainable = model.trainable()
    fingerprint = hashlib.sha256(
        json.dumps([asdict(settings), manifest_sha256, model.base_sha256], sort_keys=True).encode()
    ).hexdigest()
    discard_if_stale(workdir, fingerprint)
    params = {"finetune": asdict(settings), "dataset": dataset.name}
    with stage_run("finetune", recipe.name, params, resume_run_id=recorded_run_id(workdir), output=out) as run:
        run.set_tags(
            {"manifest_sha256": manifest_sha256, "base_sha256": model.base_sha256 or "none", "mode": model.mode}
        )
        log_dataset(run, dataset, "train", split="train")
        result = train_denoiser(
            prepared.backbone,
            trainable,
            prepared.images,
            prepared.labels,
            prepared.scheduler,
            settings.train,
            workdir,
            record={"mlflow_run_id": run.run_id, "fingerprint": fingerprint},
            log=lambda m, s: run.log_metrics(m, step=s),
            stop_after=stop_after,
        )
        if result.steps < settings.train.steps:
            return result, model
        record = _adapter_record(recipe, dataset, manifest_sha256, prepared, result, run.run_id)
        build_folder(
            out, lambda staging: _build_adapter(staging, run, recipe.name, prepared, trainable, result, record)
        )
        register_adapter(run, out, recipe.name, read_adapter_record(out))
        if files is not None:
            # the headline is the last logged loss (the mean of the last ``log_every`` steps);
            # adapter.json is the record, so there is no figures file
            curve = [{"step": int(step), "loss": float(loss)} for step, loss in result.losses]
            headline = {"loss": curve[-1]["loss"] if curve else None}
            for path in files.write(headline, tables={"finetune-loss.csv": curve} if curve else {}):
                run.log_artifact(path, "finetune")
    return result, model


def _adapter_record(
    recipe: Recipe, dataset: Path, manifest_sha256: str, prepared: _Prepared, result: TrainResult, run_id: str
) -> dict[str, Any]:
    """The adapter's record: what it was trained on and from, how, for how long, and by what."""
    settings = recipe.finetune
    return {
        "recipe": recipe.name,
        "dataset": dataset.name,
        "dataset_manifest_sha256": manifest_sha256,
        **prepared.record,
        "scheduler": dict(prepared.scheduler.config),
        "adapter": asdict(settings.adapter),
        "train": asdict(settings.train),
        "steps": result.steps,
        "train_seconds": round(result.seconds, 1),
        "hardware": hardware(),
        "mlflow_run_id": run_id,
        "created_by": created_by(),
    }


def _build_adapter(
    staging: Path,
    run: StageRun,
    recipe: str,
    prepared: _Prepared,
    trainable: dict[str, torch.nn.Parameter],
    result: TrainResult,
    record: dict[str, Any],
) -> list[Path]:
    """Write the adapter, its sample grid and loss curve into ``staging``; MLflow takes their figures."""
    model = prepared.model
    sha = write_adapter(model, staging, record)
    grid = sample_grid(
        prepared.backbone,
        prepared.scheduler,
        model.classes,
        staging / "samples.png",
        shape=prepared.sample_shape,
    )
    curve = loss_curve(result.losses, staging / "loss.png", title=f"{recipe} {model.mode} fine-tune")
    trainable_count = sum(p.numel() for p in trainable.values())
    total = sum(p.numel() for p in model.unet.parameters())
    run.set_tags({"adapter_sha256": sha})
    run.log_metrics(
        {
            "trainable_parameters": trainable_count,
            "trainable_fraction": trainable_count / total,
            "adapter_bytes": (staging / weights_file(model.mode)).stat().st_size,
            "images_per_second": result.images_per_second,
            "train_seconds": result.seconds,
        }
    )
    run.log_artifact(grid, "samples")
    run.log_artifact(curve, "plots")
    return [grid, curve]
