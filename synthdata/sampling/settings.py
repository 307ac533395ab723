"""The sampling settings (a recipe's ``sample`` section): how many images per class, and how they
are sampled from the adapted model.

Each allowed value is spelled once, in the type that names it beside the code that reads it
(``Policy`` in ``quotas``, ``SchedulerName`` in ``generate``, ``GenerationMode`` in the manifest);
the recipe loader, :func:`synthdata.settings.check_choices` and the command line read them
from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from synthdata.classify.train import ClassifierSettings
from synthdata.data.manifest import GenerationMode
from synthdata.sampling.generate import SchedulerName
from synthdata.sampling.quotas import Policy
from synthdata.settings import SettingError, check_choices, check_numbers


@dataclass(frozen=True)
class SampleSettings:
    """The synthetic set: how many images per class (a quota policy with a cap) and how they
    are sampled from the adapted model."""

    policy: Policy = "to-max"
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
    mode: GenerationMode = "noise"
    """``noise``: sample from pure noise; ``img2img``: start from a real train image of the class
    noised to ``strength`` (SDEdit); ``interpolate``: two real train images of the class,
    DDIM-inverted to ``strength`` and mixed with a drawn ``weight`` (``synthdata.sampling.anchors``)."""
    strength: float | list[float] = field(default=0.5, metadata={"range": "[0, 1]"})
    """How far a source is noised: a number, or ``[low, high]`` drawn per image (1 = pure noise,
    0 = the source itself). Ignored in ``noise`` mode."""
    weight: float | list[float] = field(default_factory=lambda: [0.25, 0.75], metadata={"range": "[0, 1]"})
    """``interpolate``: the second source's weight, a number or ``[low, high]`` drawn per image."""
    scheduler: SchedulerName = "dpm-solver++"
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
        """The one check of these settings: :func:`synthdata.sampling.quotas.plan_quotas` relies on it."""
        check_numbers(self)
        check_choices(self)
        if self.policy == "to-target" and self.target is None:
            raise ValueError("sample.target is required for policy 'to-target'")
        if self.policy == "share" and self.share is None:
            raise ValueError("sample.share is required for policy 'share'")
        for name in ("strength", "weight"):
            value = getattr(self, name)
            if isinstance(value, list) and (len(value) != 2 or value[0] > value[1]):
                raise SettingError(name, f"must be a number or [low, high] with low <= high, got {value!r}")
