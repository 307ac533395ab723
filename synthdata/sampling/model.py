"""An adapter on its base, ready to sample: the backbone, its schedule and its identity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthdata.models.adapter import load_adapted, load_stable_diffusion_adapter, read_adapter_record
from synthdata.models.backbone import PixelBackbone
from synthdata.models.base import DEFAULT_BASE
from synthdata.models.stable_diffusion import stable_diffusion_backbone
from synthdata.sampling.guide import ClassifierGuide, train_guide
from synthdata.sampling.settings import SampleSettings


@dataclass
class SamplingModel:
    backbone: Any
    scheduler: Any
    classes: list[str]
    shape: tuple[int, int, int]
    """One sample in the backbone's training space (pixels, or latents)."""
    base_id: str
    """The base's name: ``synthdata:default_base`` for the shipped one, else its folder name;
    ``none:scratch`` for a model trained from scratch."""
    base_sha256: str
    """Empty for a model trained from scratch."""
    adapter_sha256: str
    guide: ClassifierGuide | None = None
    """Classifier guidance at sampling time (:func:`attach_guide`); None: off."""

    @property
    def pixels(self) -> tuple[int, int, int]:
        """One sample in pixels (channels, height, width): the training space itself for the
        pixel base, the VAE's output for Stable Diffusion (what a real source is resized to)."""
        vae = getattr(self.backbone, "vae", None)
        if vae is None:
            return self.shape
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        return (int(vae.config.in_channels), self.shape[1] * factor, self.shape[2] * factor)


def attach_guide(model: SamplingModel, settings: SampleSettings, dataset: Path) -> SamplingModel:
    """Train and attach the guide classifier when ``settings`` ask for classifier guidance."""
    model.guide = train_guide(dataset, len(model.classes), model.pixels, settings.classifier_guidance, settings.guide)
    return model


def base_id(folder: Path | None) -> str:
    folder = Path(folder) if folder is not None else DEFAULT_BASE
    if folder.resolve() == DEFAULT_BASE.resolve():
        return f"synthdata:{DEFAULT_BASE.name}"
    return folder.resolve().name


def load_sampling_model(adapter: Path | str, base: Path | str | None = None) -> SamplingModel:
    """Load ``adapter`` onto ``base`` (the shipped base when None); the base's sha256 must
    match the one the adapter records."""
    adapter = Path(adapter)
    base_folder = Path(base) if base is not None else None
    meta = read_adapter_record(adapter)
    if meta.get("base_kind") == "stable-diffusion":
        if base_folder is None:
            raise FileNotFoundError(f"{adapter}: a Stable Diffusion adapter needs its base folder (finetune.base)")
        model, parts = load_stable_diffusion_adapter(adapter, base_folder)
        backbone = stable_diffusion_backbone(parts, model.prompts)
        backbone.unet = model.unet
        latent = int(parts.unet.config.sample_size)
        shape = (int(parts.unet.config.in_channels), latent, latent)
        scheduler = parts.scheduler
    else:
        model = load_adapted(adapter, base_folder)
        backbone = PixelBackbone(model.unet, null_class=model.null_class)
        config = model.unet.config
        shape = (int(config.in_channels), int(config.sample_size), int(config.sample_size))
        scheduler = _scheduler_of(meta)
    model.unet.eval()
    merge_lora(model.unet)
    if model.mode == "scratch":  # no base: the adapter folder holds the whole model
        return SamplingModel(backbone, scheduler, list(model.classes), shape, "none:scratch", "", meta["sha256"])
    return SamplingModel(
        backbone, scheduler, list(model.classes), shape, base_id(base_folder), model.base_sha256, meta["sha256"]
    )


def merge_lora(module: Any) -> int:
    """Fold every LoRA layer's update into its base weight (W + BA), in place; returns how many
    layers were merged. Sampling then costs what the base costs (unmerged, each adapted conv
    runs a second, low-rank path at every step)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    merged = 0
    for layer in module.modules():
        if isinstance(layer, BaseTunerLayer) and not layer.merged:
            layer.merge(safe_merge=True)
            merged += 1
    return merged


def _scheduler_of(meta: dict[str, Any]) -> Any:
    """The training schedule recorded in the adapter (the base's, same for scratch mode)."""
    from diffusers import DDPMScheduler

    config = {k: v for k, v in meta["scheduler"].items() if not k.startswith("_")}
    return DDPMScheduler.from_config(config)
