"""The recipe: one YAML file per domain dataset, read into typed, validated dataclasses.

Each pipeline stage reads only its own section. The settings of a section live beside the library
code they configure (``SampleSettings`` in ``synthdata.sampling.settings``, ``AdapterSettings``
in ``synthdata.models.adapter``, ...); this module only assembles them into a :class:`Recipe`,
and re-exports them so ``from synthdata.config.recipe import SampleSettings`` keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from synthdata.credentials.settings import ProvenanceSettings, SigningSettings
from synthdata.data.ingest import DataSettings
from synthdata.data.longtail import LongtailSettings
from synthdata.data.splits import SplitSettings
from synthdata.downstream.settings import UtilitySettings
from synthdata.errors import RecipeError
from synthdata.models.adapter import AdapterSettings
from synthdata.models.base import UNetSettings
from synthdata.paths import RECIPE_NAME
from synthdata.sampling.settings import SampleSettings
from synthdata.settings import build, check_numbers
from synthdata.training.loop import TrainSettings
from synthdata.validation.filter import FilterSettings
from synthdata.validation.gates import GateSettings
from synthdata.validation.settings import ValidateSettings

__all__ = [
    "AdapterSettings",
    "DataSettings",
    "FilterSettings",
    "FinetuneSettings",
    "GateSettings",
    "LongtailSettings",
    "PretrainSettings",
    "ProvenanceSettings",
    "Recipe",
    "SampleSettings",
    "SigningSettings",
    "SplitSettings",
    "UtilitySettings",
    "ValidateSettings",
    "load_recipe",
]


@dataclass(frozen=True)
class PretrainSettings:
    """Pretraining a base on this recipe's dataset (the generic corpus, CIFAR-10)."""

    unet: UNetSettings = field(default_factory=UNetSettings)
    train: TrainSettings = field(default_factory=lambda: TrainSettings(steps=4000, learning_rate=2e-4))
    sample_guidance: float = field(default=2.0, metadata={"range": "[0, 50]"})
    """Guidance scale of the sample grids logged during and after training."""

    def __post_init__(self) -> None:
        check_numbers(self)


@dataclass(frozen=True)
class FinetuneSettings:
    base: str | None = None
    """Base model folder; None uses the base shipped inside synthdata."""
    adapter: AdapterSettings = field(default_factory=AdapterSettings)
    train: TrainSettings = field(
        default_factory=lambda: TrainSettings(
            steps=600, learning_rate=1e-3, warmup_steps=50, class_table_lr_scale=30.0
        )
    )


@dataclass(frozen=True)
class Recipe:
    """One domain's whole configuration."""

    name: str
    domain: Literal["medical", "satellite", "driving", "generic"]
    data: DataSettings
    description: str = ""
    longtail: LongtailSettings = field(default_factory=LongtailSettings)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    sample: SampleSettings = field(default_factory=SampleSettings)
    validate: ValidateSettings = field(default_factory=ValidateSettings)
    utility: UtilitySettings = field(default_factory=UtilitySettings)
    provenance: ProvenanceSettings = field(default_factory=ProvenanceSettings)
    pretrain: PretrainSettings | None = None

    def __post_init__(self) -> None:
        if not RECIPE_NAME.fullmatch(self.name):
            raise ValueError(f"name must be lower-case letters, digits, '-' or '_', got {self.name!r}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


PIPELINE_SECTIONS = ("data", "longtail", "finetune", "sample", "validate", "utility", "provenance")
"""The recipe sections ``dvc.yaml`` tracks as parameters: DVC refuses a recipe that lacks one, so a
recipe run by ``dvc repro`` names each (``{}`` takes every default)."""


def missing_pipeline_sections(path: str | Path) -> list[str]:
    """The sections of :data:`PIPELINE_SECTIONS` a (loadable) recipe file does not name."""
    data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    return [name for name in PIPELINE_SECTIONS if not isinstance(data, dict) or name not in data]


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe; every problem is a :class:`RecipeError` naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{path}: recipe file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read recipe ({exc})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise RecipeError(f"{path}: malformed YAML{at}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        raise RecipeError(f"{path}: recipe is empty")
    return build(Recipe, data, source=path)
