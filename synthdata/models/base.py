"""The class-conditional pixel-space base: a diffusers ``UNet2DModel`` with a class embedding.

Its class table has one row per class plus a final *null* row, the label used when the class is
dropped during training, so classifier-free guidance works at sampling time. A base is saved as
a diffusers-style folder:

    unet/config.json, unet/diffusion_pytorch_model.safetensors   EMA weights
    scheduler/scheduler_config.json                               the noise schedule it was trained with
    base.json                                                     classes, corpus, training record
    README.md                                                     the model card
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthdata.atomic import build_folder
from synthdata.errors import SynthdataError
from synthdata.hashing import file_sha256
from synthdata.models.weights import WeightsError, refuse_pickle
from synthdata.settings import check_numbers

BASE_RECORD = "base.json"
UNET_WEIGHTS = "unet/diffusion_pytorch_model.safetensors"
DEFAULT_BASE = Path(__file__).resolve().parent / "default_base"


@dataclass(frozen=True)
class UNetSettings:
    """Architecture of a pixel base; these are the ``UNet2DModel`` arguments that vary."""

    sample_size: int = field(default=32, metadata={"range": "[8, 1024]"})
    channels: int = field(default=3, metadata={"range": "[1, 4]"})
    block_out_channels: list[int] = field(default_factory=lambda: [32, 64, 128], metadata={"range": "[1, 2048]"})
    layers_per_block: int = field(default=1, metadata={"range": "[1, 8]"})
    attention_levels: int = field(default=1, metadata={"range": "[1, 8]"})
    """How many of the lowest-resolution levels carry self-attention (8x8 at 32 px)."""
    norm_num_groups: int = field(default=16, metadata={"range": "[1, 256]"})
    attention_head_dim: int = field(default=32, metadata={"range": "[1, 1024]"})

    def __post_init__(self) -> None:
        check_numbers(self)
        if not 1 <= len(self.block_out_channels) <= 8:
            raise ValueError("block_out_channels must list between 1 and 8 levels")
        if not 1 <= self.attention_levels <= len(self.block_out_channels):
            raise ValueError("attention_levels must be between 1 and the number of blocks")
        if any(c % self.norm_num_groups for c in self.block_out_channels):
            raise ValueError("every block_out_channels entry must be divisible by norm_num_groups")


def build_unet(settings: UNetSettings, num_classes: int) -> Any:
    """A fresh ``UNet2DModel`` for ``num_classes`` classes (+1 null row)."""
    from diffusers import UNet2DModel

    levels = len(settings.block_out_channels)
    plain = levels - settings.attention_levels
    return UNet2DModel(
        sample_size=settings.sample_size,
        in_channels=settings.channels,
        out_channels=settings.channels,
        layers_per_block=settings.layers_per_block,
        block_out_channels=tuple(settings.block_out_channels),
        down_block_types=("DownBlock2D",) * plain + ("AttnDownBlock2D",) * settings.attention_levels,
        up_block_types=("AttnUpBlock2D",) * settings.attention_levels + ("UpBlock2D",) * plain,
        num_class_embeds=num_classes + 1,
        norm_num_groups=settings.norm_num_groups,
        attention_head_dim=settings.attention_head_dim,
    )


def build_scheduler(num_train_timesteps: int = 1000) -> Any:
    """The training noise schedule: cosine betas (better than linear at 32 px), epsilon target."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps, beta_schedule="squaredcos_cap_v2", prediction_type="epsilon"
    )


@dataclass
class BaseModel:
    """A loaded base: the network, its schedule, its record, and its identity (sha256)."""

    unet: Any
    scheduler: Any
    record: dict[str, Any]
    sha256: str
    path: Path | None = None

    @property
    def classes(self) -> list[str]:
        return list(self.record["classes"])

    @property
    def null_class(self) -> int:
        return len(self.record["classes"])


def write_base(unet: Any, scheduler: Any, record: dict[str, Any], folder: Path, card: str | None = None) -> str:
    """Write the base files into ``folder`` (a staging folder: publishing is the caller's);
    returns the sha256 of its weights file."""
    folder = Path(folder)
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    scheduler.save_pretrained(folder / "scheduler")
    sha = file_sha256(folder / UNET_WEIGHTS)
    (folder / BASE_RECORD).write_text(json.dumps({**record, "sha256": sha}, indent=2) + "\n")
    if card is not None:
        (folder / "README.md").write_text(card)
    return sha


def save_base(unet: Any, scheduler: Any, record: dict[str, Any], folder: Path, card: str | None = None) -> str:
    """Write a base folder atomically; returns the sha256 of its weights file."""
    digests = []

    def build(staging: Path) -> list[Path]:
        digests.append(write_base(unet, scheduler, record, staging, card))
        return [staging / BASE_RECORD]

    build_folder(Path(folder), build)
    return digests[0]


def load_base(folder: Path | str | None = None) -> BaseModel:
    """Load a base folder (the shipped default when ``folder`` is None); safetensors only."""
    from diffusers import DDPMScheduler, UNet2DModel

    folder = Path(folder) if folder is not None else DEFAULT_BASE
    if not (folder / BASE_RECORD).is_file():
        raise SynthdataError(f"{folder}: not a synthdata base (no {BASE_RECORD})")
    refuse_pickle(folder / "unet")
    if not (folder / UNET_WEIGHTS).is_file():
        raise WeightsError(f"{folder / UNET_WEIGHTS}: weights file not found")
    record = json.loads((folder / BASE_RECORD).read_text())
    sha = file_sha256(folder / UNET_WEIGHTS)
    if record.get("sha256") not in (None, sha):
        raise WeightsError(f"{folder / UNET_WEIGHTS}: sha256 {sha} differs from the one recorded in {BASE_RECORD}")
    unet = UNet2DModel.from_pretrained(folder / "unet", use_safetensors=True)
    scheduler = DDPMScheduler.from_pretrained(folder / "scheduler")
    return BaseModel(unet, scheduler, record, sha, folder)
