"""How synthetic images enter a downstream model's batches.

By default a synthetic arm pools the synthetic set with the real train split and draws from the
union. ``utility.synthetic.share`` instead fixes the synthetic share of every batch (DA-Fusion's
``synthetic_probability``): step *t* takes ``floor(s*B*(t+1)) - floor(s*B*t)`` synthetic images,
so over any run of batches the share is exactly ``s`` to within one image, whatever the pools'
sizes. ``loss_weight`` scales each synthetic image's loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from synthdata.classify.train import Draw, class_prior, draw_uniform_or_balanced
from synthdata.settings import check_numbers


@dataclass(frozen=True)
class SyntheticMixing:
    """Settings of the synthetic arms only; the classical arms never see them."""

    share: float | None = field(default=None, metadata={"range": "[0, 1]"})
    """Synthetic images per batch, as a fraction of the batch; None pools real and synthetic."""
    loss_weight: float = field(default=0.5, metadata={"range": "[0, 100]"})
    """Weight of a synthetic image's loss (1: as a real image's). 0.5 had the best validation
    balanced accuracy of pooled/0.25-share x 1/0.5 on pbc (benchmarks/results/utility_mixing_pbc.md)."""

    def __post_init__(self) -> None:
        check_numbers(self)


def synthetic_count(share: float, batch_size: int, step: int) -> int:
    """Synthetic images in batch ``step``: the running total ``floor(share * B * steps)`` stays exact."""
    return math.floor(share * batch_size * (step + 1)) - math.floor(share * batch_size * step)


def mixed_draw(
    labels: torch.Tensor, real_count: int, num_classes: int, batch_size: int, balanced: bool, share: float | None
) -> Draw:
    """The batch draw of a synthetic arm over ``labels`` (the real images first, then the
    synthetic ones): pooled, or with a fixed synthetic share, each part uniform or class-balanced."""
    if share is None or real_count == len(labels):
        return lambda step, generator: draw_uniform_or_balanced(labels, num_classes, batch_size, balanced, generator)
    real, synthetic = labels[:real_count], labels[real_count:]

    def draw(step: int, generator: torch.Generator) -> torch.Tensor:
        k = synthetic_count(share, batch_size, step)
        from_real = draw_uniform_or_balanced(real, num_classes, batch_size - k, balanced, generator)
        from_synthetic = draw_uniform_or_balanced(synthetic, num_classes, k, balanced, generator) + real_count
        return torch.cat([from_real, from_synthetic])

    return draw


def synthetic_weights(total: int, real_count: int, loss_weight: float) -> torch.Tensor | None:
    """Per-image loss weights (1 for real, ``loss_weight`` for synthetic); None when all are 1."""
    if loss_weight == 1.0 or real_count == total:
        return None
    weights = torch.ones(total)
    weights[real_count:] = loss_weight
    return weights


def training_prior(labels: torch.Tensor, real_count: int, num_classes: int, share: float | None) -> torch.Tensor:
    """The class prior of what an arm's uniform batches show: the pooled labels' shares, or with a
    fixed synthetic share ``s``, ``(1 - s) * prior(real) + s * prior(synthetic)``."""
    if share is None or real_count == len(labels):
        return class_prior(labels, num_classes)
    return (1 - share) * class_prior(labels[:real_count], num_classes) + share * class_prior(
        labels[real_count:], num_classes
    )
