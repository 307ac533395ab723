"""Seeded, stratified hold-out splits that never separate the members of a group.

A group is a set of near-identical images (a GTSRB track of 30 frames of one sign): putting
some frames in train and others in validation would leak. Without groups, each image is its
own group and this is an ordinary stratified split.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from synthdata.settings import check_numbers


@dataclass(frozen=True)
class SplitSettings:
    """How train/val/test are made when the source has no official split (or no val split)."""

    val_fraction: float = field(default=0.1, metadata={"range": "[0, 1)"})
    """Share of each class (or of each class's tracks) held out for validation."""
    test_fraction: float = field(default=0.2, metadata={"range": "[0, 1)"})
    """Share of each class held out for test; used only when the source has no test split."""
    seed: int = field(default=0, metadata={"range": "seed"})

    def __post_init__(self) -> None:
        check_numbers(self)
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("split.val_fraction + split.test_fraction must be below 1")


def stratified_holdout(labels: Sequence[str], groups: Sequence[str], fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the held-out items: about ``fraction`` of each class, whole groups only.

    Groups are taken in a seeded random order until the class's target count is reached; the
    group that crosses the target is taken if that lands closer to it than stopping short. A
    group whose images have several classes (a patient with two diagnoses) counts towards its
    most frequent class and is still held out whole.
    """
    held = np.zeros(len(labels), dtype=bool)
    if fraction <= 0:
        return held
    members: dict[str, list[int]] = defaultdict(list)
    classes: dict[str, Counter[str]] = defaultdict(Counter)
    for index, (label, group) in enumerate(zip(labels, groups, strict=True)):
        members[group].append(index)
        classes[group][label] += 1
    by_class: dict[str, dict[str, list[int]]] = defaultdict(dict)
    for group, counts in classes.items():
        by_class[max(sorted(counts), key=counts.__getitem__)][group] = members[group]
    rng = np.random.default_rng(seed)
    for label in sorted(by_class):
        in_class = by_class[label]
        names = sorted(in_class)
        order = rng.permutation(len(names))
        total = sum(len(v) for v in in_class.values())
        target = round(fraction * total)
        taken = 0
        for position in order:
            indices = in_class[names[position]]
            if taken >= target:
                break
            if taken + len(indices) > target and (taken + len(indices) - target) > (target - taken):
                break
            held[indices] = True
            taken += len(indices)
    return held
