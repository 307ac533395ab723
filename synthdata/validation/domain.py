"""The domain classifier: a SmallResNet trained on the real train split of the dataset.

It serves twice: its penultimate layer is the *domain* feature space (FD-domain, KID-domain,
...: features that know what matters in this domain, where ImageNet features may not), and
its class probabilities drive the quality filter. Trained with class-balanced batches and small
random shifts, so the rare classes are not ignored; its accuracy per class on the real
*validation* split (never the test split) is reported beside the filter it drives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from synthdata.classify.network import SmallResNet
from synthdata.classify.train import ClassifierSettings, TrainLog, random_shift, run_model, train_classifier
from synthdata.models.weights import write_tensors


@dataclass
class DomainClassifier:
    model: SmallResNet
    log: TrainLog
    classes: list[str]

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Class probabilities and domain features of uint8 images."""
        return run_model(self.model, images)

    def per_class_accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        if len(images) == 0:
            return {}
        predicted = self(images)[0].argmax(dim=1)
        return {
            name: float((predicted[labels == i] == i).float().mean())
            for i, name in enumerate(self.classes)
            if (labels == i).any()
        }

    def save(self, path: Path) -> Path:
        write_tensors(dict(self.model.state_dict()), path)
        return path


def train_domain_classifier(
    images: torch.Tensor, labels: torch.Tensor, classes: list[str], settings: ClassifierSettings
) -> DomainClassifier:
    model, log = train_classifier(
        images, labels, len(classes), settings, augment=random_shift(2), description="domain classifier"
    )
    return DomainClassifier(model, log, list(classes))
