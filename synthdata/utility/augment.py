"""Domain augmentation for the downstream model, built from the recipe with albumentations and MONAI.

A recipe lists transforms by library and class name with their keyword arguments::

    augmentation:
      - {transform: albumentations.HorizontalFlip, params: {p: 0.5}}
      - {transform: monai.RandScaleIntensity, params: {factors: 0.1, prob: 0.5}}

Each is built when the recipe is loaded, so a misspelled name or a wrong argument is a recipe
error, not a failure an hour into training. Only *label-preserving* transforms belong here and
that is domain knowledge the recipe states: flips and 90-degree rotations for satellite tiles,
intensity changes for medical images (nothing that changes anatomy), colour, blur and brightness
for traffic signs (no flips: they change a sign's meaning).

Images travel as float32 HWC in [0, 1]: albumentations takes that layout directly; MONAI array
transforms take CHW and get a transposed view. Every batch reseeds both libraries from the
training step's generator, so an arm's augmented batches are the same on every run.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

LIBRARIES = {"albumentations": "albumentations", "monai": "monai.transforms"}


@dataclass(frozen=True)
class TransformSpec:
    """One transform: ``<library>.<ClassName>`` (library: albumentations or monai) and its arguments."""

    transform: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def library(self) -> str:
        return self.transform.split(".", 1)[0]

    def __post_init__(self) -> None:
        build_transform(self)  # a bad name or argument fails when the recipe is read


def build_transform(spec: TransformSpec) -> Any:
    library, _, name = spec.transform.partition(".")
    if library not in LIBRARIES or not name:
        raise ValueError(f"transform '{spec.transform}' must be '<library>.<Class>' with library one of {', '.join(LIBRARIES)}")
    if library == "albumentations":
        import os

        os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    module = importlib.import_module(LIBRARIES[library])
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        raise ValueError(f"unknown transform '{spec.transform}': {LIBRARIES[library]} has no class {name}")
    accepted = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(spec.params) - set(accepted))
        if unknown:  # some libraries only warn about these
            raise ValueError(f"transform '{spec.transform}' rejects its params {spec.params}: unknown argument '{unknown[0]}' (takes {', '.join(accepted)})")
    try:
        transform = cls(**spec.params)
    except Exception as exc:  # each library raises its own types for bad arguments
        reason = " ".join(str(exc).split())[:300]
        raise ValueError(f"transform '{spec.transform}' rejects its params {spec.params}: {reason}") from None
    if library == "monai" and not hasattr(transform, "set_random_state"):
        raise ValueError(f"transform '{spec.transform}' is not a random MONAI transform (use a Rand* class)")
    return transform


class Augmentation:
    """A callable for :func:`synthdata.classify.train.train_classifier`: a batch in [-1, 1] and the
    step's generator in, the augmented batch out."""

    def __init__(self, specs: list[TransformSpec]):
        if not specs:
            raise ValueError("an augmentation needs at least one transform")
        import albumentations as A
        from monai.data import set_track_meta

        set_track_meta(False)  # plain arrays out of MONAI, no metadata tensors
        self.specs = list(specs)
        self.steps: list[tuple[str, Any]] = []
        for library, group in _groups(self.specs):
            transforms = [build_transform(s) for s in group]
            if library == "albumentations":
                self.steps.append((library, A.Compose(transforms, strict=True)))
            else:
                from monai.transforms import Compose

                self.steps.append((library, Compose(transforms)))

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        for offset, (library, compose) in enumerate(self.steps):
            if library == "albumentations":
                compose.set_random_seed(seed + offset)
            else:
                compose.set_random_state(seed + offset)
        images = batch.add(1.0).div(2.0).permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32)
        out = np.empty_like(images)
        for i, image in enumerate(images):
            for library, compose in self.steps:
                if library == "albumentations":
                    image = compose(image=image)["image"]
                else:
                    image = np.asarray(compose(np.ascontiguousarray(image.transpose(2, 0, 1))), dtype=np.float32).transpose(1, 2, 0)
            if image.shape != out.shape[1:]:
                raise ValueError(f"augmentation changed the image shape {out.shape[1:]} -> {image.shape}")
            out[i] = np.clip(image, 0.0, 1.0)
        return torch.from_numpy(out).permute(0, 3, 1, 2).mul(2.0).sub(1.0).contiguous()


def _groups(specs: list[TransformSpec]) -> list[tuple[str, list[TransformSpec]]]:
    """Consecutive transforms of one library, in order."""
    groups: list[tuple[str, list[TransformSpec]]] = []
    for spec in specs:
        if groups and groups[-1][0] == spec.library:
            groups[-1][1].append(spec)
        else:
            groups.append((spec.library, [spec]))
    return groups
