"""A model's samples as a figure: one row per class, drawn with a fixed seed so that grids of
two runs (pretraining, fine-tuning) compare image for image."""

from __future__ import annotations

from pathlib import Path

import torch

from synthdata.data.tensors import to_uint8
from synthdata.reporting.grid import save_grid
from synthdata.sampling.generate import generate


def sample_grid(
    backbone,
    scheduler,
    classes: list[str],
    path: Path,
    *,
    shape: tuple[int, int, int],
    per_class: int = 8,
    guidance: float = 2.0,
) -> Path:
    """A per-class grid of DPM-Solver++ samples with a fixed seed (comparable across runs);
    ``shape`` is one sample in the backbone's training space (pixels or latents)."""
    labels = torch.arange(len(classes)).repeat_interleave(per_class)
    samples = generate(
        backbone, scheduler, labels, shape=shape, guidance=guidance, generator=torch.Generator().manual_seed(0)
    )
    return save_grid(to_uint8(samples), len(classes), path, labels=classes)
