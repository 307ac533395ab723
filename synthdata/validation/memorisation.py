"""Memorisation: is a synthetic image a near-copy of an image the model was fine-tuned on?

For every synthetic image: its nearest neighbour in the fine-tuning set, in pixel space (RMS
difference on [0, 1] pixels) and in a feature space (Euclidean). The threshold is calibrated on
real images the model never saw: their own nearest-neighbour distances to the fine-tuning set.
A synthetic image closer to the fine-tuning set than the ``quantile`` of those real distances
(1% by default) is flagged as a near-copy; no held-out test image takes part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def nearest(queries: torch.Tensor, points: torch.Tensor, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query row, the distance to its nearest point and that point's index."""
    distances, indices = [], []
    points = points.float()
    for start in range(0, len(queries), chunk):
        block = torch.cdist(queries[start : start + chunk].float(), points)
        value, index = block.min(dim=1)
        distances.append(value)
        indices.append(index)
    return torch.cat(distances), torch.cat(indices)


def pixel_vectors(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, C*H*W) in [0, 1], scaled so that distances are RMS differences."""
    flat = images.reshape(len(images), -1).float() / 255.0
    return flat / float(np.sqrt(flat.shape[1]))


@dataclass
class Memorisation:
    space: str
    distances: torch.Tensor
    """Each synthetic image's distance to its nearest fine-tuning image."""
    neighbours: torch.Tensor
    """Index of that image in the fine-tuning set."""
    threshold: float
    real_distances: torch.Tensor
    """Held-out real images' nearest-neighbour distances (the calibration)."""

    @property
    def flagged(self) -> torch.Tensor:
        return self.distances < self.threshold

    def summary(self) -> dict[str, float]:
        return {
            "threshold": self.threshold,
            "near_copies": int(self.flagged.sum()),
            "near_copy_fraction": float(self.flagged.float().mean()) if len(self.distances) else 0.0,
            "median_distance": float(self.distances.median()) if len(self.distances) else float("nan"),
            "real_median_distance": float(self.real_distances.median()),
        }


def memorisation(
    space: str, synthetic: torch.Tensor, training: torch.Tensor, heldout: torch.Tensor, *, quantile: float = 0.01
) -> Memorisation:
    """Nearest fine-tuning neighbours of ``synthetic`` and the near-copy threshold calibrated on
    ``heldout`` real vectors (same space, never the test split)."""
    if len(heldout) == 0:
        raise ValueError("memorisation needs held-out real images to calibrate its threshold")
    real_distances, _ = nearest(heldout, training)
    threshold = float(torch.quantile(real_distances.double(), quantile))
    distances, neighbours = nearest(synthetic, training)
    return Memorisation(space, distances, neighbours, threshold, real_distances)
