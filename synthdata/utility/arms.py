"""The arms of a utility comparison: what each downstream model trains on, and how.

Every arm trains the same network for the same number of optimizer steps with the same batch
size and seeds; only the training images and how batches are drawn differ. Every arm also gets
the same random shift of up to 2 pixels (label-preserving everywhere), so "augmented" means the
domain's own augmentation on top of that. An arm's name contains ``synth`` exactly when it
trains on synthetic images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Arm:
    name: str
    synthetic: Literal["adapted", "scratch"] | None
    """Which synthetic set joins the real train split: from the LoRA-adapted base, or from the
    same network trained from scratch on the same data (the ablation)."""
    balanced: bool
    """Class-balanced batches (every class equally likely) instead of uniform draws."""
    augmented: bool
    """The recipe's domain augmentation (albumentations / MONAI)."""
    description: str


ARMS: dict[str, Arm] = {arm.name: arm for arm in (
    Arm("real", None, False, False, "real long-tailed train split, uniform batches"),
    Arm("real-oversampled", None, True, False, "real, class-balanced batches (rare classes oversampled)"),
    Arm("real-augmented", None, False, True, "real with the domain augmentation"),
    Arm("real-oversampled-augmented", None, True, True, "real, class-balanced batches and the domain augmentation"),
    Arm("real+synth", "adapted", False, False, "real + the validated synthetic set (LoRA-adapted base)"),
    Arm("real+synth-oversampled", "adapted", True, False, "real + synthetic, class-balanced batches (synthetic on top of oversampling)"),
    Arm("real+synth-augmented", "adapted", False, True, "real + synthetic with the domain augmentation"),
    Arm("real+synth-scratch", "scratch", False, False, "real + a synthetic set from the same network trained from scratch"),
)}  # fmt: skip

DEFAULT_ARMS = ["real", "real-oversampled", "real-augmented", "real+synth", "real+synth-oversampled", "real+synth-augmented"]
CLASSICAL = [name for name, arm in ARMS.items() if arm.synthetic is None]
