"""The downstream comparison's settings (a recipe's ``utility`` section): arms, seeds, the
classifier and its budget, how synthetic images are mixed in."""

from __future__ import annotations

from dataclasses import dataclass, field

from synthdata.classify.network import MODEL_NAME
from synthdata.classify.train import ClassifierSettings
from synthdata.downstream.arms import ARMS, DEFAULT_ARMS
from synthdata.downstream.augment import TransformSpec
from synthdata.downstream.batches import SyntheticMixing
from synthdata.downstream.budget import BudgetSettings
from synthdata.settings import SettingError, check_numbers


@dataclass(frozen=True)
class UtilitySettings:
    """The downstream comparison: arms trained at equal steps on the same seeds, at a budget where
    the real arms have converged, scored on the untouched real test split."""

    arms: list[str] | None = None
    """Arms to train (see ``synthdata.downstream.arms``); ``real+synth-scratch`` needs a scratch set.
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
