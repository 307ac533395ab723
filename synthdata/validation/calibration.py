"""The judge of a synthetic set, calibrated on real images: a domain classifier trained on the
fine-tuning (train) images, and near-copy thresholds read from held-out real images' distances
to those images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from synthdata.data.tensors import load_files, load_split
from synthdata.validation.domain import DomainClassifier, train_domain_classifier
from synthdata.validation.filter import Judge, Real, heldout_real
from synthdata.validation.inputs import ValidationInputs
from synthdata.validation.lineage import check_lineage
from synthdata.validation.memorisation import nearest, pixel_vectors

if TYPE_CHECKING:
    from synthdata.validation.settings import ValidateSettings


@dataclass
class Calibration:
    """The judge, and the real images and distances its figures are read beside."""

    judge: Judge
    heldout: Real
    """Real images the fine-tune never saw, never the test split."""
    heldout_features: torch.Tensor
    """The held-out images in the domain classifier's feature space."""
    real_nearest: dict[str, torch.Tensor]
    """Held-out real images' nearest-neighbour distances to the fine-tuning set, pixel and feature."""
    val_accuracy: dict[str, float]
    """The domain classifier's per-class accuracy on the real validation split."""

    @property
    def train(self) -> Real:
        return self.judge.train

    @property
    def classifier(self) -> DomainClassifier:
        return self.judge.classifier

    @property
    def thresholds(self) -> dict[str, float]:
        return self.judge.thresholds


def calibrate(dataset: Path, pool: Path | None, inputs: ValidationInputs, settings: ValidateSettings) -> Calibration:
    """Train the domain classifier on ``dataset``'s train split and calibrate the near-copy
    thresholds on held-out real images (its val split and ``pool``'s unused train images)."""
    # 1. The fine-tuning images, in load_split's order; every source of a derived image is one of them.
    channels, classes, size = inputs.card.channels, inputs.classes, inputs.size
    train_images, train_labels, _ = load_split(dataset, "train", size=size, channels=channels)
    frame = inputs.dataset.frame
    train_ids = sorted(frame.loc[frame["split"] == "train", "id"].astype(str))  # load_split's order
    train = Real(train_images, train_labels, train_ids)
    check_lineage(inputs.source_frame, set(train_ids), str(inputs.synthetic))
    heldout = heldout_real(dataset, pool, size, channels)
    # 2. The domain classifier, trained on the train split and scored on the val split.
    val_rows = frame[frame["split"] == "val"]
    torch.manual_seed(settings.seed)
    classifier = train_domain_classifier(train.images, train.labels, classes, settings.classifier)
    val_accuracy = classifier.per_class_accuracy(
        load_files(dataset, list(val_rows["relpath"]), size=size, channels=channels)
        if len(val_rows)
        else torch.empty(0),
        torch.tensor(val_rows["label"].to_numpy(), dtype=torch.int64),
    )
    # 3. The near-copy thresholds.
    train_pixels = pixel_vectors(train.images)
    train_features = classifier(train.images)[1]
    _, heldout_features = classifier(heldout.images)
    # Real images' nearest-neighbour distances to the fine-tuning set: the scale every copy test is calibrated on.
    real_nearest = {
        "pixel": nearest(pixel_vectors(heldout.images), train_pixels)[0].double(),
        "feature": nearest(heldout_features, train_features)[0].double(),
    }
    thresholds = {
        space: float(torch.quantile(distances, settings.memorisation_quantile))
        for space, distances in real_nearest.items()
    }
    judge = Judge(classifier, train, size, channels, thresholds, train_pixels, train_features)
    return Calibration(judge, heldout, heldout_features, real_nearest, val_accuracy)
