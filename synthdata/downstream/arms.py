"""The arms of a utility comparison: what each downstream model trains on, and how.

Every arm trains the same network for the same number of optimizer steps with the same batch
size and seeds; only the training images, how batches are drawn and the loss differ. Every arm
also gets the same random shift of up to 2 pixels (label-preserving everywhere), so "augmented"
means the domain's own augmentation on top of that. An arm's name contains ``synth`` exactly
when it trains on synthetic images.

The classical arms are the cheap long-tail baselines a synthetic set has to beat: class-balanced
oversampling, the domain's augmentation, the logit-adjusted loss (Menon et al. 2021, "Long-tail
learning via logit adjustment") and mixup / CutMix (MONAI's ``MixUp`` and ``CutMix``). The
goal compares the best synthetic arm with the best of all of them.
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
    logit_adjusted: bool = False
    """Train on logits + tau * log(class prior) (the priors of the real train split); predict
    with the plain logits. Menon et al. use it with uniform batches, so its arms do too."""
    mix: Literal["mixup", "cutmix"] | None = None
    """Mix pairs of images of each batch, and their labels in the same proportion (MONAI)."""


ARMS: dict[str, Arm] = {
    arm.name: arm
    for arm in (
        Arm("real", None, False, False, "real long-tailed train split, uniform batches"),
        Arm("real-oversampled", None, True, False, "real, class-balanced batches (rare classes oversampled)"),
        Arm("real-augmented", None, False, True, "real with the domain augmentation"),
        Arm(
            "real-oversampled-augmented", None, True, True, "real, class-balanced batches and the domain augmentation"
        ),
        Arm(
            "real-logit-adjusted",
            None,
            False,
            False,
            "real, uniform batches, logit-adjusted loss (Menon et al. 2021)",
            logit_adjusted=True,
        ),
        Arm(
            "real-logit-adjusted-augmented",
            None,
            False,
            True,
            "real, logit-adjusted loss and the domain augmentation",
            logit_adjusted=True,
        ),
        Arm(
            "real-oversampled-mixup",
            None,
            True,
            True,
            "real, class-balanced batches, domain augmentation and mixup",
            mix="mixup",
        ),
        Arm(
            "real-oversampled-cutmix",
            None,
            True,
            True,
            "real, class-balanced batches, domain augmentation and CutMix",
            mix="cutmix",
        ),
        Arm("real+synth", "adapted", False, False, "real + the validated synthetic set (LoRA-adapted base)"),
        Arm(
            "real+synth-oversampled",
            "adapted",
            True,
            False,
            "real + synthetic, class-balanced batches (synthetic on top of oversampling)",
        ),
        Arm("real+synth-augmented", "adapted", False, True, "real + synthetic with the domain augmentation"),
        Arm(
            "real+synth-oversampled-augmented",
            "adapted",
            True,
            True,
            "real + synthetic on top of the best cheap trick: class-balanced batches and the domain augmentation",
        ),
        Arm(
            "real+synth-logit-adjusted-augmented",
            "adapted",
            False,
            True,
            "real + synthetic with the logit-adjusted loss (priors of the real split) and the domain augmentation",
            logit_adjusted=True,
        ),
        Arm(
            "real+synth-scratch",
            "scratch",
            False,
            False,
            "real + a synthetic set from the same network trained from scratch",
        ),
    )
}

DEFAULT_ARMS = [
    "real",
    "real-oversampled",
    "real-oversampled-augmented",
    "real-logit-adjusted-augmented",
    "real-oversampled-cutmix",
    "real+synth-oversampled",
    "real+synth-oversampled-augmented",
]
"""Uniform real data, then the strongest cheap baselines, then synthetic data on top of the best
of them (and on top of oversampling alone)."""
DOUBLED = "@2x"
"""Suffix of a classical arm run at twice the budget ("would more steps of real data do the
same?"); such an arm takes part in the goal as a classical arm."""


def arm_of(name: str) -> Arm:
    """The arm behind a result name, ``real-oversampled@2x`` included."""
    return ARMS[name.removesuffix(DOUBLED)]


def is_classical(name: str) -> bool:
    return arm_of(name).synthetic is None
