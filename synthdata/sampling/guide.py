"""Classifier guidance from a domain classifier on the predicted clean image.

At every denoising step the model's prediction is turned into its estimate of the clean image
``x0``; a classifier trained on the real train split gives the gradient of ``log p(class | x0)``
with respect to ``x0``; that gradient, normalised to unit RMS per image, moves ``x0`` by
``scale`` (in pixel units of [-1, 1]) and the step continues from the moved estimate. This is
the cheap form of guidance (no gradient through the denoiser: the estimate is nudged, not the
noisy latent), used to keep class fidelity at higher strengths.

The guide is trained with its own seed, so the validation filter (another classifier, trained
with the validation seed) does not judge the very network that steered the images; both still see
only the train split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from synthdata.classify.network import SmallResNet
from synthdata.classify.train import ClassifierSettings, random_shift, train_classifier
from synthdata.data.tensors import load_split
from synthdata.errors import SynthdataError


@dataclass
class ClassifierGuide:
    model: SmallResNet
    scale: float
    """RMS distance (pixels in [-1, 1]) the clean estimate moves per step."""

    def direction(self, pixels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Gradient of ``log p(label | pixels)`` with respect to ``pixels`` (in [-1, 1], the
        classifier's own input range), scaled to unit RMS per image."""
        self.model.eval()
        with torch.enable_grad():
            x = pixels.detach().float().clone().requires_grad_(True)
            logits = self.model(x)
            chosen = torch.log_softmax(logits, dim=1).gather(1, labels.reshape(-1, 1).to(logits.device)).sum()
            (gradient,) = torch.autograd.grad(chosen, x)
        rms = gradient.flatten(1).pow(2).mean(1).sqrt().clamp_min(1e-12)
        return (gradient / rms.reshape(-1, *[1] * (gradient.dim() - 1))).to(pixels.dtype)


def train_guide(
    dataset: Path, classes: int, pixels: tuple[int, int, int], scale: float, settings: ClassifierSettings
) -> ClassifierGuide | None:
    """A guide trained on ``dataset``'s train split at the generator's pixel size, or None when
    ``scale`` is 0. Deterministic: a resumed run retrains the same network."""
    if scale == 0:
        return None
    channels, height, width = pixels
    if height != width:
        raise SynthdataError(f"classifier guidance needs square images, the generator makes {height}x{width}")
    images, labels, _ = load_split(dataset, "train", size=height, channels=channels)
    torch.manual_seed(settings.seed)
    model, _ = train_classifier(
        images, labels, classes, settings, augment=random_shift(2), description="guide classifier"
    )
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return ClassifierGuide(model, scale)
