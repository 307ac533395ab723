"""Domain augmentation for the downstream model, built from the recipe with albumentations and MONAI.

A recipe lists transforms by library and class name with their keyword arguments::

    augmentation:
      - {transform: albumentations.HorizontalFlip, params: {p: 0.5}}
      - {transform: monai.RandScaleIntensity, params: {factors: 0.1, prob: 0.5}}

Only the transforms in :data:`TRANSFORMS` can be named: label-preserving intensity and geometry
transforms, each with the parameters it may be given and what kind of value each takes (a plain
finite number, a boolean, a string from a fixed set, a list of numbers). A recipe can therefore
never name a callable, an import path or a reader: nothing is imported or built for a name that
is not listed, and a listed class only ever gets plain values. Which of them are label-preserving
for a domain is domain knowledge the recipe states: flips and 90-degree rotations for satellite
tiles, intensity changes for medical images (nothing that changes anatomy), colour, blur and
brightness for traffic signs (no flips: they change a sign's meaning).

Each transform is built when the recipe is loaded, so a misspelled name or a wrong argument is a
recipe error, not a failure an hour into training.

Images travel as float32 HWC in [0, 1]: albumentations takes that layout directly; MONAI array
transforms take CHW and get a transposed view. Every batch reseeds both libraries from the
training step's generator, so an arm's augmented batches are the same on every run.
"""

from __future__ import annotations

import difflib
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from synthdata.settings import SettingError

LIBRARIES = {"albumentations": "albumentations", "monai": "monai.transforms"}
LARGEST = 1000.0
"""No parameter of a listed transform means anything beyond this magnitude (degrees, kernel
sizes, gamma percentages, control points); larger values only cost memory or time."""


@dataclass(frozen=True)
class Kind:
    """What a parameter accepts, in words for the error message, and the test."""

    words: str
    admits: Callable[[Any], bool]


def _number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return (isinstance(value, int) or math.isfinite(value)) and abs(value) <= LARGEST  # an int may exceed any float


def _numbers(count: int | None) -> Callable[[Any], bool]:
    return lambda v: (
        isinstance(v, list) and (count is None or len(v) == count) and 0 < len(v) <= 6 and all(map(_number, v))
    )


NUMBER = Kind(f"a finite number within +-{LARGEST:g}", _number)
PROBABILITY = Kind("a probability in [0, 1]", lambda v: _number(v) and 0 <= v <= 1)
INTEGER = Kind(f"an integer within +-{LARGEST:g}", lambda v: _number(v) and isinstance(v, int))
FLAG = Kind("true or false", lambda v: isinstance(v, bool))
PAIR = Kind("a list of 2 numbers", _numbers(2))
NUMBER_OR_PAIR = Kind(
    f"a number or a list of 2 numbers (each within +-{LARGEST:g})", lambda v: _number(v) or _numbers(2)(v)
)
NUMBERS = Kind("a number or a list of up to 6 numbers", lambda v: _number(v) or _numbers(None)(v))


def choice(*allowed: str | int) -> Kind:
    """One of a fixed set of strings (or of a library's integer constants)."""
    return Kind(
        f"one of {list(allowed)}", lambda v: not isinstance(v, bool) and type(v) in (str, int) and v in allowed
    )


_CV_INTERPOLATION = choice(0, 1, 2, 3, 4)  # cv2 INTER_NEAREST, LINEAR, CUBIC, AREA, LANCZOS4
_CV_BORDER = choice(0, 1, 2, 3, 4)  # cv2 BORDER_CONSTANT, REPLICATE, REFLECT, WRAP, REFLECT_101
_MONAI_APPROX = choice("erf", "sampled", "scalespace")
_MONAI_MODE = choice("bilinear", "nearest")
_MONAI_PADDING = choice("zeros", "border", "reflection")
_FLIP = {"p": PROBABILITY}

TRANSFORMS: dict[str, dict[str, Kind]] = {
    # albumentations: geometry that keeps the image size
    "albumentations.HorizontalFlip": _FLIP,
    "albumentations.VerticalFlip": _FLIP,
    "albumentations.RandomRotate90": _FLIP,
    "albumentations.Transpose": _FLIP,
    "albumentations.D4": _FLIP,
    "albumentations.Affine": {
        "scale": NUMBER_OR_PAIR,
        "translate_percent": NUMBER_OR_PAIR,
        "rotate": NUMBER_OR_PAIR,
        "shear": NUMBER_OR_PAIR,
        "interpolation": _CV_INTERPOLATION,
        "keep_ratio": FLAG,
        "balanced_scale": FLAG,
        "border_mode": _CV_BORDER,
        "fill": NUMBER,
        "p": PROBABILITY,
    },
    "albumentations.Rotate": {
        "limit": NUMBER_OR_PAIR,
        "interpolation": _CV_INTERPOLATION,
        "border_mode": _CV_BORDER,
        "fill": NUMBER,
        "p": PROBABILITY,
    },
    # albumentations: intensity and colour
    "albumentations.RandomBrightnessContrast": {
        "brightness_limit": NUMBER_OR_PAIR,
        "contrast_limit": NUMBER_OR_PAIR,
        "brightness_by_max": FLAG,
        "ensure_safe_range": FLAG,
        "p": PROBABILITY,
    },
    "albumentations.ColorJitter": {
        "brightness": NUMBER_OR_PAIR,
        "contrast": NUMBER_OR_PAIR,
        "saturation": NUMBER_OR_PAIR,
        "hue": NUMBER_OR_PAIR,
        "p": PROBABILITY,
    },
    "albumentations.HueSaturationValue": {
        "hue_shift_limit": NUMBER_OR_PAIR,
        "sat_shift_limit": NUMBER_OR_PAIR,
        "val_shift_limit": NUMBER_OR_PAIR,
        "p": PROBABILITY,
    },
    "albumentations.RGBShift": {
        "r_shift_limit": NUMBER_OR_PAIR,
        "g_shift_limit": NUMBER_OR_PAIR,
        "b_shift_limit": NUMBER_OR_PAIR,
        "p": PROBABILITY,
    },
    "albumentations.RandomGamma": {"gamma_limit": NUMBER_OR_PAIR, "p": PROBABILITY},
    "albumentations.GaussianBlur": {"blur_limit": NUMBER_OR_PAIR, "sigma_limit": NUMBER_OR_PAIR, "p": PROBABILITY},
    "albumentations.Blur": {"blur_limit": NUMBER_OR_PAIR, "p": PROBABILITY},
    "albumentations.MedianBlur": {"blur_limit": NUMBER_OR_PAIR, "p": PROBABILITY},
    "albumentations.MotionBlur": {"blur_limit": NUMBER_OR_PAIR, "allow_shifted": FLAG, "p": PROBABILITY},
    "albumentations.GaussNoise": {
        "std_range": PAIR,
        "mean_range": PAIR,
        "per_channel": FLAG,
        "noise_scale_factor": NUMBER,
        "p": PROBABILITY,
    },
    "albumentations.Sharpen": {"alpha": PAIR, "lightness": PAIR, "p": PROBABILITY},
    # MONAI: random intensity transforms
    "monai.RandScaleIntensity": {"factors": NUMBER_OR_PAIR, "prob": PROBABILITY, "channel_wise": FLAG},
    "monai.RandShiftIntensity": {"offsets": NUMBER_OR_PAIR, "safe": FLAG, "prob": PROBABILITY, "channel_wise": FLAG},
    "monai.RandStdShiftIntensity": {
        "factors": NUMBER_OR_PAIR,
        "prob": PROBABILITY,
        "nonzero": FLAG,
        "channel_wise": FLAG,
    },
    "monai.RandAdjustContrast": {
        "gamma": NUMBER_OR_PAIR,
        "prob": PROBABILITY,
        "invert_image": FLAG,
        "retain_stats": FLAG,
    },
    "monai.RandGaussianNoise": {"mean": NUMBER, "std": NUMBER, "prob": PROBABILITY, "sample_std": FLAG},
    "monai.RandRicianNoise": {
        "mean": NUMBER,
        "std": NUMBER,
        "prob": PROBABILITY,
        "channel_wise": FLAG,
        "relative": FLAG,
        "sample_std": FLAG,
    },
    "monai.RandGaussianSmooth": {"sigma_x": PAIR, "sigma_y": PAIR, "prob": PROBABILITY, "approx": _MONAI_APPROX},
    "monai.RandGaussianSharpen": {
        "sigma1_x": PAIR,
        "sigma1_y": PAIR,
        "sigma2_x": NUMBER_OR_PAIR,
        "sigma2_y": NUMBER_OR_PAIR,
        "alpha": PAIR,
        "approx": _MONAI_APPROX,
        "prob": PROBABILITY,
    },
    "monai.RandBiasField": {"degree": INTEGER, "coeff_range": PAIR, "prob": PROBABILITY},
    "monai.RandHistogramShift": {"num_control_points": NUMBER_OR_PAIR, "prob": PROBABILITY},
    "monai.RandGibbsNoise": {"alpha": NUMBER_OR_PAIR, "prob": PROBABILITY},
    # MONAI: random geometry that keeps the image size
    "monai.RandFlip": {"prob": PROBABILITY, "spatial_axis": NUMBERS},
    "monai.RandAxisFlip": {"prob": PROBABILITY},
    "monai.RandRotate90": {"prob": PROBABILITY, "max_k": INTEGER, "spatial_axes": PAIR},
    "monai.RandRotate": {
        "range_x": NUMBER_OR_PAIR,
        "prob": PROBABILITY,
        "mode": _MONAI_MODE,
        "padding_mode": _MONAI_PADDING,
    },
    "monai.RandAffine": {
        "prob": PROBABILITY,
        "rotate_range": NUMBERS,
        "shear_range": NUMBERS,
        "translate_range": NUMBERS,
        "scale_range": NUMBERS,
        "mode": _MONAI_MODE,
        "padding_mode": _MONAI_PADDING,
    },
    "monai.RandZoom": {
        "prob": PROBABILITY,
        "min_zoom": NUMBER,
        "max_zoom": NUMBER,
        "mode": choice("area", "bilinear", "nearest"),
        "padding_mode": choice("edge", "constant", "reflect"),
    },
}
"""Every transform a recipe may build, with the parameters each may be given."""


@dataclass(frozen=True)
class TransformSpec:
    """One transform of :data:`TRANSFORMS` (``<library>.<ClassName>``) and its arguments."""

    transform: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def library(self) -> str:
        return self.transform.split(".", 1)[0]

    def __post_init__(self) -> None:
        build_transform(self)  # a bad name or argument fails when the recipe is read


def _unlisted(name: str) -> str:
    """Why ``name`` cannot be built, with the closest listed name and everything allowed."""
    library, _, cls = name.partition(".")
    if library not in LIBRARIES or not cls:
        why = f": a transform is '<library>.<Class>' with library one of {', '.join(LIBRARIES)}"
    elif library == "monai" and not cls.startswith("Rand"):
        why = ", which is not a random MONAI transform (use a Rand* class)"
    else:
        close = difflib.get_close_matches(name, list(TRANSFORMS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        why = f", which is not an allowed transform: {library} has no class {cls} on the list{hint}"
    return f"names {name!r}{why}; allowed: {', '.join(TRANSFORMS)}"


def check_spec(spec: TransformSpec) -> None:
    """Raise a setting error (naming ``transform`` or ``params.<name>``) unless the transform
    is listed and each parameter is one it takes, of the kind it takes. Imports nothing."""
    kinds = TRANSFORMS.get(spec.transform)
    if kinds is None:
        raise SettingError("transform", _unlisted(spec.transform))
    for name, value in spec.params.items():
        if name not in kinds:
            raise SettingError(
                f"params.{name}", f"is unknown: {spec.transform} rejects its params (it takes {', '.join(kinds)})"
            )
        if not kinds[name].admits(value):
            raise SettingError(f"params.{name}", f"must be {kinds[name].words}, got {value!r}")


def transform_class(name: str) -> type:
    """The class of a listed transform; an unlisted name is never imported."""
    if name not in TRANSFORMS:
        raise SettingError("transform", _unlisted(name))
    library, _, cls = name.partition(".")
    if library == "albumentations":
        import os

        os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    return getattr(importlib.import_module(LIBRARIES[library]), cls)


def build_transform(spec: TransformSpec) -> Any:
    """The transform ``spec`` names, built with its checked parameters."""
    check_spec(spec)
    try:
        return transform_class(spec.transform)(**spec.params)
    except Exception as exc:  # each library raises its own types for values it rejects together
        reason = " ".join(str(exc).split())[:300]
        raise ValueError(f"transform '{spec.transform}' rejects its params {spec.params}: {reason}") from None


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
                    image = np.asarray(
                        compose(np.ascontiguousarray(image.transpose(2, 0, 1))), dtype=np.float32
                    ).transpose(1, 2, 0)
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
