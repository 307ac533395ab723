"""The recipe: one YAML file per domain dataset, read into typed, validated dataclasses.

Each pipeline stage reads only its own section. Later stages add sections here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from synthdata.config.strict import SettingError, build, check_numbers
from synthdata.errors import RecipeError
from synthdata.paths import RECIPE_NAME
from synthdata.classify.network import MODEL_NAME
from synthdata.classify.train import ClassifierSettings
from synthdata.models.base import UNetSettings
from synthdata.training.loop import TrainSettings
from synthdata.utility.arms import ARMS, DEFAULT_ARMS
from synthdata.utility.augment import TransformSpec
from synthdata.utility.batches import SyntheticMixing
from synthdata.utility.budget import BudgetSettings
from synthdata.validation.filter import FilterSettings
from synthdata.validation.gates import GateSettings

_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")
"""A submodule name as peft matches it (``to_out.0``): a plain name, never a pattern."""


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
    channels: Literal[1, 3] | None = field(default=None, metadata={"range": "[1, 3]"})
    """Declared channels; built-in sources declare their own, user data defaults to the first image."""
    image_size: int | None = field(default=None, metadata={"range": "[8, 1024]"})
    """Resize every image to this square size on ingest; None keeps the native size, which
    must then be the same for every image."""
    licence: str | None = None
    """Licence recorded on every manifest row (user data); built-in sources declare their own."""
    split: SplitSettings = field(default_factory=SplitSettings)

    def __post_init__(self) -> None:
        check_numbers(self)
        if self.source in ("imagefolder", "npz") and not self.path:
            raise ValueError(f"data.path is required for source '{self.source}'")
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise ValueError("data.classes has duplicate names")


@dataclass(frozen=True)
class LongtailSettings:
    """The CIFAR-10-LT protocol: n_i = n_max * imbalance^(-i/(C-1)) on the train split."""

    enabled: bool = True
    imbalance: float = field(default=100.0, metadata={"range": "[1, 10_000]"})
    """rho: the ratio between the largest and the smallest class."""
    max_per_class: int | None = field(default=None, metadata={"range": "[1, 10_000_000]"})
    """n_max; None takes the largest value every class can supply."""
    seed: int = field(default=0, metadata={"range": "seed"})
    """Seeds the permutation that picks which class is rare, and the subsampling."""

    def __post_init__(self) -> None:
        check_numbers(self)


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
class AdapterSettings:
    """How the base is adapted. ``lora``: base frozen, LoRA on attention projections and
    convolutions plus a new class table; ``full``: every base weight trained; ``scratch``: the
    same architecture from random initialisation (no base), for comparison."""

    mode: Literal["lora", "full", "scratch"] = "lora"
    rank: int = field(default=8, metadata={"range": "[1, 512]"})
    """LoRA rank; more than a layer's channels adds nothing."""
    alpha: float = field(default=8.0, metadata={"range": "(0, 4096]"})
    """LoRA scale: the update is (alpha / rank) B A."""
    dropout: float = field(default=0.0, metadata={"range": "[0, 1)"})
    target_modules: list[str] = field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2"])
    """Submodule names (peft matches them as name suffixes), never patterns."""

    def __post_init__(self) -> None:
        check_numbers(self)
        if not self.target_modules:
            raise ValueError("finetune.adapter.target_modules must name at least one module")
        odd = [name for name in self.target_modules if not _MODULE_NAME.fullmatch(name)]
        if odd:
            raise SettingError("target_modules", f"must be module names like to_q or to_out.0, got {odd[0]!r}")


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
    target: int | None = field(default=None, metadata={"range": "[0, 10_000_000]"})
    """Images per class (real + synthetic) for ``to-target``."""
    share: float | None = field(default=None, metadata={"range": "[0, 1000]"})
    """Synthetic images per real image for ``share``."""
    max_ratio: float = field(default=10.0, metadata={"range": "[0, 1000]"})
    """Cap on synthetic:real per class."""
    max_images: int | None = field(default=None, metadata={"range": "[0, 100_000_000]"})
    """Budget on synthetic images in all: a larger plan is scaled down in proportion, rarest
    classes keeping the largest shares (a CPU preset; ``None``: no budget)."""
    classes: list[str] | None = None
    """Only these classes get synthetic images (default: every class)."""
    mode: Literal["noise", "img2img", "interpolate"] = "noise"
    """``noise``: sample from pure noise; ``img2img``: start from a real train image of the class
    noised to ``strength`` (SDEdit); ``interpolate``: two real train images of the class,
    DDIM-inverted to ``strength`` and mixed with a drawn ``weight`` (``synthdata.sampling.anchors``)."""
    strength: float | list[float] = field(default=0.5, metadata={"range": "[0, 1]"})
    """How far a source is noised: a number, or ``[low, high]`` drawn per image (1 = pure noise,
    0 = the source itself). Ignored in ``noise`` mode."""
    weight: float | list[float] = field(default_factory=lambda: [0.25, 0.75], metadata={"range": "[0, 1]"})
    """``interpolate``: the second source's weight, a number or ``[low, high]`` drawn per image."""
    scheduler: Literal["dpm-solver++", "ddim", "ddpm"] = "dpm-solver++"
    steps: int = field(default=20, metadata={"range": "[1, 1000]"})
    """Sampling steps (DDPM always takes every training step)."""
    guidance: float = field(default=2.0, metadata={"range": "[0, 50]"})
    """Classifier-free guidance scale (1 = no guidance)."""
    classifier_guidance: float = field(default=0.0, metadata={"range": "[0, 10]"})
    """Classifier guidance: how far (RMS, pixels in [-1, 1]) each step's clean-image estimate moves
    along a guide classifier's normalised gradient towards its class; 0 = off
    (``synthdata.sampling.guide``; pixel-space bases only)."""
    guide: ClassifierSettings = field(default_factory=lambda: ClassifierSettings(steps=800, balanced=True, seed=1))
    """The guide classifier, trained on the real train split with its own seed (the validation
    filter's classifier uses another)."""
    batch_size: int = field(default=32, metadata={"range": "[1, 4096]"})
    """Images per generation batch (on CPU, 32 is faster than 64 or more)."""
    seed: int = field(default=0, metadata={"range": "seed"})
    """With the adapter and sampler settings, determines every image's seed."""
    shard_size: int = field(default=0, metadata={"range": "[0, 1_000_000]"})
    """Images per WebDataset ``.tar`` shard; 0 writes no shards."""

    def __post_init__(self) -> None:
        check_numbers(self)
        if self.policy == "to-target" and self.target is None:
            raise ValueError("sample.target is required for policy 'to-target'")
        if self.policy == "share" and self.share is None:
            raise ValueError("sample.share is required for policy 'share'")
        for name in ("strength", "weight"):
            value = getattr(self, name)
            if isinstance(value, list) and (len(value) != 2 or value[0] > value[1]):
                raise SettingError(name, f"must be a number or [low, high] with low <= high, got {value!r}")


@dataclass(frozen=True)
class ValidateSettings:
    """The validation stage: feature spaces, metric resampling, domain classifier, filter, gates."""

    features: list[Literal["effnet", "domain"]] = field(default_factory=lambda: ["effnet", "domain"])
    resamples: int = field(default=10, metadata={"range": "[0, 10_000]"})
    """Resamples for the 95% intervals."""
    neighbours: int = field(default=5, metadata={"range": "[1, 1000]"})
    """k of the k-NN manifolds (precision, recall, density, coverage)."""
    memorisation_quantile: float = field(default=0.01, metadata={"range": "(0, 1)"})
    """Near-copy threshold: this quantile of held-out real nearest-neighbour distances."""
    classifier: ClassifierSettings = field(default_factory=lambda: ClassifierSettings(steps=800, balanced=True))
    """The domain classifier, trained on the real train split (class-balanced batches)."""
    filter: FilterSettings = field(default_factory=FilterSettings)
    gates: GateSettings = field(default_factory=GateSettings)
    seed: int = field(default=0, metadata={"range": "seed"})

    def __post_init__(self) -> None:
        check_numbers(self)
        if not self.features:
            raise ValueError("validate.features must name at least one feature space")


@dataclass(frozen=True)
class UtilitySettings:
    """The downstream comparison: arms trained at equal steps on the same seeds, at a budget where
    the real arms have converged, scored on the untouched real test split."""

    arms: list[str] | None = None
    """Arms to train (see ``synthdata.utility.arms``); ``real+synth-scratch`` needs a scratch set.
    Default: ``DEFAULT_ARMS`` (uniform real, the strongest cheap baselines, synthetic on top of the
    best of them), less the augmented ones when no augmentation is given."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"range": "seed"})
    classifier: ClassifierSettings = field(default_factory=lambda: ClassifierSettings(steps=500))
    """The optimizer (batch size, learning rate, weight decay), the small ResNet's width, and the
    steps of the hand-picked budget (``budget.rule: steps``); the same for every arm."""
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    """How the steps are chosen: by default where the reference arm's validation accuracy stops rising."""
    model: str = "small-resnet"
    """The downstream network: ``small-resnet``, ``monai:resnet18`` (and the other MONAI 2-D
    classifiers in ``synthdata.classify.network.MONAI_NETWORKS``) or ``timm:<architecture>`` where
    timm is installed; always randomly initialised (no weights are downloaded)."""
    image_size: int | None = field(default=None, metadata={"range": "[8, 1024]"})
    """Input size of the downstream network; None: the dataset's own image size."""
    synthetic: SyntheticMixing = field(default_factory=SyntheticMixing)
    """How synthetic images enter the synthetic arms' batches and loss."""
    logit_tau: float = field(default=1.0, metadata={"range": "[0, 10]"})
    """tau of the logit-adjusted arms (Menon et al. 2021 find 1 a good default)."""
    mix_alpha: float = field(default=1.0, metadata={"range": "(0, 100]"})
    """Beta(alpha, alpha) of the mixing weight in the mixup and CutMix arms."""
    augmentation: list[TransformSpec] = field(default_factory=list)
    """The domain's label-preserving augmentation for the ``-augmented`` arms."""
    rare_fraction: float = field(default=1 / 3, metadata={"range": "(0, 1]"})
    """Share of classes, fewest training images first, whose mean recall is the rare-class figure."""

    def __post_init__(self) -> None:
        check_numbers(self)
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
        if not MODEL_NAME.fullmatch(self.model):
            raise SettingError("model", f"must be small-resnet, monai:<name> or timm:<name>, got {self.model!r}")
        reference = ARMS.get(self.budget.reference_arm)
        if self.budget.rule == "plateau" and (reference is None or reference.synthetic is not None):
            raise SettingError("budget.reference_arm", f"must be a classical arm, got {self.budget.reference_arm!r}")
        if reference is not None and reference.augmented and not self.augmentation:
            raise SettingError("budget.reference_arm", f"{reference.name} needs utility.augmentation")


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
        if not RECIPE_NAME.fullmatch(self.name):
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
