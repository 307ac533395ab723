"""The recipe: one YAML file per domain dataset, read into typed, validated dataclasses.

Each pipeline stage reads only its own section. Later stages add sections here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from synthdata.config.strict import build
from synthdata.errors import RecipeError
from synthdata.classify.train import ClassifierSettings
from synthdata.models.base import UNetSettings
from synthdata.training.loop import TrainSettings
from synthdata.utility.arms import ARMS, DEFAULT_ARMS
from synthdata.utility.augment import TransformSpec

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class SplitSettings:
    """How train/val/test are made when the source has no official split (or no val split)."""

    val_fraction: float = 0.1
    """Share of each class (or of each class's tracks) held out for validation."""
    test_fraction: float = 0.2
    """Share of each class held out for test; used only when the source has no test split."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"split.{name} must be in [0, 1), got {value}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("split.val_fraction + split.test_fraction must be below 1")


@dataclass(frozen=True)
class DataSettings:
    """Where the real data comes from and what shape it is declared to have."""

    source: str
    """A registered source (pbc, pneumoniamnist, breastmnist, eurosat, gtsrb, cifar10) or a
    user format: ``imagefolder`` (folder or zip of class folders) or ``npz`` (MedMNIST style)."""
    path: str | None = None
    """For ``imagefolder``/``npz``: the folder, zip or npz file (relative to the working dir)."""
    classes: list[str] | None = None
    """Declared label set, in label order. Built-in sources declare their own; an image or a
    label outside the declared set is an error."""
    channels: Literal[1, 3] | None = None
    """Declared channels; built-in sources declare their own, user data defaults to the first image."""
    image_size: int | None = None
    """Resize every image to this square size on ingest; None keeps the native size, which
    must then be the same for every image."""
    licence: str | None = None
    """Licence recorded on every manifest row (user data); built-in sources declare their own."""
    split: SplitSettings = field(default_factory=SplitSettings)

    def __post_init__(self) -> None:
        if self.source in ("imagefolder", "npz") and not self.path:
            raise ValueError(f"data.path is required for source '{self.source}'")
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise ValueError("data.classes has duplicate names")
        if self.image_size is not None and not 8 <= self.image_size <= 1024:
            raise ValueError(f"data.image_size must be between 8 and 1024, got {self.image_size}")


@dataclass(frozen=True)
class LongtailSettings:
    """The CIFAR-10-LT protocol: n_i = n_max * imbalance^(-i/(C-1)) on the train split."""

    enabled: bool = True
    imbalance: float = 100.0
    """rho: the ratio between the largest and the smallest class."""
    max_per_class: int | None = None
    """n_max; None takes the largest value every class can supply."""
    seed: int = 0
    """Seeds the permutation that picks which class is rare, and the subsampling."""

    def __post_init__(self) -> None:
        if self.imbalance < 1.0:
            raise ValueError(f"longtail.imbalance must be >= 1, got {self.imbalance}")
        if self.max_per_class is not None and self.max_per_class < 1:
            raise ValueError(f"longtail.max_per_class must be >= 1, got {self.max_per_class}")


@dataclass(frozen=True)
class PretrainSettings:
    """Pretraining a base on this recipe's dataset (the generic corpus, CIFAR-10)."""

    unet: UNetSettings = field(default_factory=UNetSettings)
    train: TrainSettings = field(default_factory=lambda: TrainSettings(steps=4000, learning_rate=2e-4))
    sample_guidance: float = 2.0
    """Guidance scale of the sample grids logged during and after training."""


@dataclass(frozen=True)
class AdapterSettings:
    """How the base is adapted. ``lora``: base frozen, LoRA on attention projections and
    convolutions plus a new class table; ``full``: every base weight trained; ``scratch``: the
    same architecture from random initialisation (no base), for comparison."""

    mode: Literal["lora", "full", "scratch"] = "lora"
    rank: int = 8
    alpha: float = 8.0
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2"])

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError(f"finetune.adapter.rank must be >= 1, got {self.rank}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"finetune.adapter.dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise ValueError("finetune.adapter.target_modules must name at least one module")


@dataclass(frozen=True)
class FinetuneSettings:
    base: str | None = None
    """Base model folder; None uses the base shipped inside synthdata."""
    adapter: AdapterSettings = field(default_factory=AdapterSettings)
    train: TrainSettings = field(
        default_factory=lambda: TrainSettings(steps=600, learning_rate=1e-3, warmup_steps=50, class_table_lr_scale=30.0)
    )


@dataclass(frozen=True)
class SampleSettings:
    """The synthetic set: how many images per class (a quota policy with a cap) and how they
    are sampled from the adapted model."""

    policy: Literal["to-max", "to-target", "share"] = "to-max"
    """``to-max``: fill every class up to the largest; ``to-target``: up to ``target``;
    ``share``: add ``share`` x the real count."""
    target: int | None = None
    """Images per class (real + synthetic) for ``to-target``."""
    share: float | None = None
    """Synthetic images per real image for ``share``."""
    max_ratio: float = 10.0
    """Cap on synthetic:real per class."""
    max_images: int | None = None
    """Budget on synthetic images in all: a larger plan is scaled down in proportion, rarest
    classes keeping the largest shares (a CPU preset; ``None``: no budget)."""
    classes: list[str] | None = None
    """Only these classes get synthetic images (default: every class)."""
    scheduler: Literal["dpm-solver++", "ddim", "ddpm"] = "dpm-solver++"
    steps: int = 20
    """Sampling steps (DDPM always takes every training step)."""
    guidance: float = 2.0
    """Classifier-free guidance scale (1 = no guidance)."""
    batch_size: int = 32
    """Images per generation batch (on CPU, 32 is faster than 64 or more)."""
    seed: int = 0
    """With the adapter and sampler settings, determines every image's seed."""
    shard_size: int = 0
    """Images per WebDataset ``.tar`` shard; 0 writes no shards."""

    def __post_init__(self) -> None:
        if self.policy == "to-target" and (self.target is None or self.target < 0):
            raise ValueError("sample.target (>= 0) is required for policy 'to-target'")
        if self.policy == "share" and (self.share is None or self.share < 0):
            raise ValueError("sample.share (>= 0) is required for policy 'share'")
        if self.max_ratio < 0:
            raise ValueError(f"sample.max_ratio must be >= 0, got {self.max_ratio}")
        if self.max_images is not None and self.max_images < 0:
            raise ValueError(f"sample.max_images must be >= 0, got {self.max_images}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("sample.steps and sample.batch_size must be >= 1")
        if self.guidance < 0:
            raise ValueError(f"sample.guidance must be >= 0, got {self.guidance}")
        if self.shard_size < 0:
            raise ValueError(f"sample.shard_size must be >= 0, got {self.shard_size}")


@dataclass(frozen=True)
class FilterSettings:
    """Which synthetic images are dropped before a set is accepted; the planner then makes
    replacements (new indices, new seeds) until every class has its quota or rounds run out."""

    enabled: bool = True
    min_confidence: float = 0.5
    """Drop an image whose own class gets a lower probability from the domain classifier."""
    drop_off_class: bool = True
    """Drop an image the domain classifier assigns to another class."""
    drop_near_copies: bool = True
    """Drop an image flagged as a near-copy of a fine-tuning image (pixel or feature space)."""
    max_rounds: int = 3
    """Regeneration rounds to refill the quota after dropping."""
    max_refill: float = 3.0
    """Images generated per round, at most this multiple of the class's deficit (a class the
    filter almost always rejects cannot make a round run away)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"validate.filter.min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.max_rounds < 0 or self.max_refill <= 0:
            raise ValueError("validate.filter.max_rounds must be >= 0 and validate.filter.max_refill > 0")


@dataclass(frozen=True)
class GateSettings:
    """Thresholds a validated set must meet; a failure exits non-zero naming metric, class,
    value and threshold. None switches a gate off."""

    max_fd_ratio: float | None = None
    """FD-domain of the accepted set over its real-vs-real floor, overall."""
    min_precision: float | None = None
    """precision-domain, overall."""
    min_coverage: float | None = None
    """coverage-domain, overall."""
    max_near_copy_fraction: float | None = 0.05
    """Near-copies among the generated images, per class (before filtering)."""
    min_fill: float | None = 0.9
    """Accepted images over the quota, per class."""
    min_diversity_ratio: float | None = 0.5
    """Intra-class diversity (domain features) of synthetic over real, per class."""


@dataclass(frozen=True)
class ValidateSettings:
    """The validation stage: feature spaces, metric resampling, domain classifier, filter, gates."""

    features: list[Literal["effnet", "domain"]] = field(default_factory=lambda: ["effnet", "domain"])
    resamples: int = 10
    """Resamples for the 95% intervals."""
    neighbours: int = 5
    """k of the k-NN manifolds (precision, recall, density, coverage)."""
    memorisation_quantile: float = 0.01
    """Near-copy threshold: this quantile of held-out real nearest-neighbour distances."""
    classifier: ClassifierSettings = field(default_factory=lambda: ClassifierSettings(steps=800, balanced=True))
    """The domain classifier, trained on the real train split (class-balanced batches)."""
    filter: FilterSettings = field(default_factory=FilterSettings)
    gates: GateSettings = field(default_factory=GateSettings)
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.features:
            raise ValueError("validate.features must name at least one feature space")
        if self.resamples < 0 or self.neighbours < 1:
            raise ValueError("validate.resamples must be >= 0 and validate.neighbours >= 1")
        if not 0.0 < self.memorisation_quantile < 1.0:
            raise ValueError("validate.memorisation_quantile must be in (0, 1)")


@dataclass(frozen=True)
class UtilitySettings:
    """The downstream comparison: arms trained at equal steps on the same seeds, scored on the
    untouched real test split."""

    arms: list[str] | None = None
    """Arms to train (see ``synthdata.utility.arms``); ``real+synth-scratch`` needs a scratch set.
    Default: real, real-oversampled, real+synth, and real-augmented and real+synth-augmented
    when an augmentation is given."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    classifier: ClassifierSettings = field(default_factory=lambda: ClassifierSettings(steps=500))
    """The downstream model (a small ResNet) and its optimizer budget, the same for every arm."""
    augmentation: list[TransformSpec] = field(default_factory=list)
    """The domain's label-preserving augmentation for the ``-augmented`` arms."""
    rare_fraction: float = 1 / 3
    """Share of classes, fewest training images first, whose mean recall is the rare-class figure."""

    def __post_init__(self) -> None:
        if self.arms is None:
            object.__setattr__(self, "arms", [a for a in DEFAULT_ARMS if self.augmentation or not ARMS[a].augmented])
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown:
            raise ValueError(f"unknown arm '{unknown[0]}'; choose from {', '.join(ARMS)}")
        if len(set(self.arms)) != len(self.arms) or not self.arms:
            raise ValueError("utility.arms must name at least one arm, each once")
        if len(self.seeds) < 1 or len(set(self.seeds)) != len(self.seeds):
            raise ValueError("utility.seeds must list at least one seed, each once")
        if any(ARMS[a].augmented for a in self.arms) and not self.augmentation:
            raise ValueError("utility.augmentation is empty but an '-augmented' arm is listed")
        if not 0.0 < self.rare_fraction <= 1.0:
            raise ValueError(f"utility.rare_fraction must be in (0, 1], got {self.rare_fraction}")


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
    pretrain: PretrainSettings | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"name must be lower-case letters, digits, '-' or '_', got {self.name!r}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


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
