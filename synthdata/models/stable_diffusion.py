"""Stable-Diffusion-family checkpoints from a local folder, adapted the same way as the base.

The folder has the diffusers layout (``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``),
weights in safetensors only. Each class is conditioned on a prompt made from a template, and
LoRA goes on the UNet's attention projections; the VAE and text encoder stay frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthdata.errors import SynthdataError
from synthdata.hashing import file_sha256
from synthdata.models.backbone import StableDiffusionBackbone
from synthdata.models.base import UNET_WEIGHTS
from synthdata.models.weights import WeightsError, refuse_pickle

DEFAULT_TEMPLATE = "a {domain} image of {label}"
SD_LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


@dataclass
class StableDiffusionParts:
    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    scheduler: Any
    sha256: str
    """sha256 of the UNet weights: the identity adapters are bound to."""


def is_stable_diffusion(folder: Path | str) -> bool:
    folder = Path(folder)
    return (folder / "unet").is_dir() and (folder / "vae").is_dir() and (folder / "text_encoder").is_dir()


def load_stable_diffusion(folder: Path | str) -> StableDiffusionParts:
    """Load UNet2DConditionModel, AutoencoderKL, CLIP text encoder and tokenizer from ``folder``."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    if not is_stable_diffusion(folder):
        raise SynthdataError(f"{folder}: not a Stable Diffusion folder (needs unet/, vae/, text_encoder/, tokenizer/)")
    refuse_pickle(folder)
    if not (folder / UNET_WEIGHTS).is_file():
        raise WeightsError(f"{folder / UNET_WEIGHTS}: weights file not found")
    unet = UNet2DConditionModel.from_pretrained(folder / "unet", use_safetensors=True)
    vae = AutoencoderKL.from_pretrained(folder / "vae", use_safetensors=True)
    text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder", use_safetensors=True)
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    if (folder / "scheduler").is_dir():
        scheduler = DDPMScheduler.from_pretrained(folder / "scheduler")
    else:
        scheduler = DDPMScheduler(
            beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, prediction_type="epsilon"
        )
    for module in (vae, text_encoder):
        module.requires_grad_(False)
    return StableDiffusionParts(unet, vae, text_encoder, tokenizer, scheduler, file_sha256(folder / UNET_WEIGHTS))


def class_prompts(classes: list[str], domain: str, template: str = DEFAULT_TEMPLATE) -> list[str]:
    """One prompt per class, e.g. ``a medical image of basophil``."""
    return [template.format(domain=domain, label=label.replace("_", " ")) for label in classes]


def stable_diffusion_backbone(parts: StableDiffusionParts, prompts: list[str]) -> StableDiffusionBackbone:
    return StableDiffusionBackbone(parts.unet, parts.vae, parts.text_encoder, parts.tokenizer, prompts)
