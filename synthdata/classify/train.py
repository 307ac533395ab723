"""Training and running a classifier (plain torch, CPU-friendly, deterministic per seed).

Training counts optimizer steps, not epochs, so models trained on sets of different sizes get
the same budget. Each step's batch is drawn with a generator seeded by (seed, step): uniformly,
class-balanced (every class equally likely, then an image of that class uniformly), or by a
caller's draw (a fixed synthetic share). An :class:`Objective` adds what the long-tail
baselines change in the loss: logit adjustment, per-image weights, mixup / CutMix.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from synthdata.classify.network import SmallResNet
from synthdata.progress import progress_bar
from synthdata.settings import check_numbers
from synthdata.training.loop import stop_if_diverged, stop_if_non_finite

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
"""float images in [-1, 1] (N, C, H, W) and a generator -> augmented images, same shape."""


@dataclass(frozen=True)
class ClassifierSettings:
    """The classifier's size and optimizer budget; each number's range is declared beside it."""

    steps: int = field(default=1500, metadata={"range": "[1, 10_000_000]"})
    batch_size: int = field(default=128, metadata={"range": "[1, 65_536]"})
    learning_rate: float = field(default=0.05, metadata={"range": "(0, 10]"})
    """Peak SGD learning rate (Nesterov momentum 0.9), cosine decay after a 5% warm-up."""
    weight_decay: float = field(default=5e-4, metadata={"range": "[0, 1]"})
    width: int = field(default=16, metadata={"range": "[1, 256]"})
    """Channels of the first stage (the penultimate features have 4 x width); 256 is already
    4x what a 32 px domain needs."""
    balanced: bool = False
    """Class-balanced batches (oversampling the rare classes) instead of uniform ones."""
    seed: int = field(default=0, metadata={"range": "seed"})

    def __post_init__(self) -> None:
        check_numbers(self)


@dataclass
class TrainLog:
    steps: int
    seconds: float
    losses: list[tuple[int, float]] = field(default_factory=list)
    images_seen: int = 0


def device_for_training() -> torch.device:
    """A CUDA device when there is one (batches are drawn and augmented on the CPU, then moved);
    on CPU every run is bit-for-bit repeatable."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float in [-1, 1]."""
    return images.float().div(127.5).sub(1.0)


def random_shift(pad: int = 2) -> Augment:
    """Translate by up to ``pad`` pixels (reflect padding): label-preserving in every domain."""

    def shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        padded = nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect")
        height, width = x.shape[2:]
        offsets = torch.randint(0, 2 * pad + 1, (len(x), 2), generator=generator)
        return torch.stack(
            [padded[i, :, dy : dy + height, dx : dx + width] for i, (dy, dx) in enumerate(offsets.tolist())]
        )

    return shift


def draw_uniform_or_balanced(
    labels: torch.Tensor, num_classes: int, size: int, balanced: bool, generator: torch.Generator
) -> torch.Tensor:
    """``size`` indices into ``labels``: uniform draws, or class-balanced ones (every class present
    equally likely, then an image of that class uniformly)."""
    if size == 0:
        return torch.empty(0, dtype=torch.int64)
    if not balanced:
        return torch.randint(0, len(labels), (size,), generator=generator)
    counts = torch.bincount(labels, minlength=num_classes).double()
    weights = torch.where(counts[labels] > 0, 1.0 / counts[labels], torch.zeros_like(counts[labels]))
    return torch.multinomial(weights, size, replacement=True, generator=generator)


Draw = Callable[[int, torch.Generator], torch.Tensor]
"""(step, generator) -> the indices of that step's batch."""
Checkpoint = Callable[[nn.Module, int], None]
"""Called with the model (in eval mode) and the number of steps done, every ``every`` steps."""


@dataclass
class Objective:
    """What a step optimises beyond plain cross-entropy on uniform or balanced batches.

    ``logit_adjustment`` is added to the logits in training only (Menon et al. 2021: tau times the
    log of the training priors; prediction uses the plain logits). ``sample_weights`` weigh each
    training image's loss (e.g. synthetic images lighter). ``mix`` mixes pairs of images of a
    batch and their one-hot labels in the same proportion, with MONAI's ``MixUp`` or ``CutMix``
    seeded per step.
    """

    logit_adjustment: torch.Tensor | None = None
    sample_weights: torch.Tensor | None = None
    mix: str | None = None
    mix_alpha: float = 1.0
    draw: Draw | None = None
    checkpoint: Checkpoint | None = None
    every: int = 0


def class_prior(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Each class's share of ``labels``; a class without images counts half an image, so that the
    log of its prior stays finite."""
    counts = torch.bincount(labels, minlength=num_classes).double().clamp_min(0.5)
    return counts / counts.sum()


def logit_adjustment(prior: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """``tau * log(prior)``: added to the logits in training, it makes the loss Fisher-consistent
    for the balanced error (Menon et al. 2021, eq. 10); prediction uses the plain logits."""
    return (tau * torch.log(prior)).float()


def mix_batch(
    kind: str, alpha: float, images: torch.Tensor, targets: torch.Tensor, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """MONAI's ``MixUp`` or ``CutMix`` on a batch and its soft targets (N, classes), one seeded
    draw of the pairing and weights for both."""
    from monai.transforms import CutMix, MixUp

    mixer = (MixUp if kind == "mixup" else CutMix)(batch_size=len(images), alpha=alpha)
    mixer.set_random_state(seed=seed)
    mixer.randomize(images)
    mixed = mixer.apply(images)
    if kind == "cutmix":
        return mixed, mixer.apply_on_labels(targets)
    # MONAI's MixUp mixes any tensor of 3 or 4 dimensions after the batch: targets as (N, C, 1, 1)
    return mixed, mixer.apply(targets[:, :, None, None]).flatten(1)


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    settings: ClassifierSettings,
    *,
    augment: Augment | None = None,
    description: str = "classifier",
    network: Callable[[], nn.Module] | None = None,
    objective: Objective | None = None,
) -> tuple[nn.Module, TrainLog]:
    """A network (``network()``, built after seeding; by default a SmallResNet of ``settings.width``) trained for
    ``settings.steps`` optimizer steps on uint8 ``images``; a run whose loss or weights go
    non-finite stops with a :class:`SynthdataError`."""
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"{len(images)} images for {len(labels)} labels")
    objective = objective or Objective()
    torch.manual_seed(settings.seed)
    device = device_for_training()
    model = (network() if network else SmallResNet(num_classes, channels=images.shape[1], width=settings.width)).to(
        device
    )
    optimizer, schedule = _optimizer(model, settings)
    adjustment = None if objective.logit_adjustment is None else objective.logit_adjustment.to(device)
    log = TrainLog(0, 0.0)
    started = time.perf_counter()
    model.train()
    with progress_bar(description, total=settings.steps) as bar:
        for step in range(settings.steps):
            # 1. the step's batch, augmented and mixed (every draw from (seed, step))
            index, batch, targets = _batch(images, labels, num_classes, settings, step, augment, objective)
            # 2. the loss: cross-entropy, logit-adjusted and weighted as the objective says
            loss = _loss(model, batch, targets, index, adjustment, objective, device)
            # 3. the optimizer and learning-rate steps
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            log.images_seen += len(index)
            if step % 50 == 0 or step == settings.steps - 1:
                log.losses.append((step, float(loss.detach())))
                stop_if_diverged(log.losses[-1][1], step + 1, description, settings)
            # 4. the objective's checkpoint, every ``objective.every`` steps
            done = step + 1
            if (
                objective.checkpoint is not None
                and objective.every
                and (done % objective.every == 0 or done == settings.steps)
            ):
                model.eval()
                objective.checkpoint(model, done)
                model.train()
            bar.advance()
    stop_if_non_finite(model.state_dict(), settings.steps, description)
    log.steps, log.seconds = settings.steps, time.perf_counter() - started
    model.eval()
    return model, log


def _optimizer(
    model: nn.Module, settings: ClassifierSettings
) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR]:
    """SGD with Nesterov momentum, and its schedule: linear warm-up over the first 5% of the
    steps, then cosine decay to 0."""
    optimizer = torch.optim.SGD(
        model.parameters(), lr=settings.learning_rate, momentum=0.9, nesterov=True, weight_decay=settings.weight_decay
    )
    warmup = max(1, settings.steps // 20)

    def rate(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, settings.steps - warmup)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, rate)


def _batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    settings: ClassifierSettings,
    step: int,
    augment: Augment | None,
    objective: Objective,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Step ``step``'s indices, its images in [-1, 1] (augmented, mixed) and their targets: class
    indices, or class probabilities after mixing."""
    generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + step)
    if objective.draw is None:
        index = draw_uniform_or_balanced(labels, num_classes, settings.batch_size, settings.balanced, generator)
    else:
        index = objective.draw(step, generator)
    batch = to_input(images[index])
    if augment is not None:
        batch = augment(batch, generator)
    targets = labels[index]
    if objective.mix is not None:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        soft = nn.functional.one_hot(targets, num_classes).float()
        batch, targets = mix_batch(objective.mix, objective.mix_alpha, batch, soft, seed)
    return index, batch, targets


def _loss(
    model: nn.Module,
    batch: torch.Tensor,
    targets: torch.Tensor,
    index: torch.Tensor,
    adjustment: torch.Tensor | None,
    objective: Objective,
    device: torch.device,
) -> torch.Tensor:
    """The batch's mean cross-entropy, logits adjusted and each image's loss weighted as ``objective`` says."""
    logits = model(batch.to(device))
    if adjustment is not None:
        logits = logits + adjustment
    # class indices, or (after mixing) class probabilities: cross_entropy takes either
    per_image = nn.functional.cross_entropy(logits, targets.to(device), reduction="none")
    if objective.sample_weights is not None:
        per_image = per_image * objective.sample_weights[index].to(device)
    return per_image.mean()


@torch.no_grad()
def run_model(model: SmallResNet, images: torch.Tensor, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities (N, classes) and penultimate features (N, 4 x width) of uint8 images."""
    model.eval()
    device = next(model.parameters()).device
    probabilities, features = [], []
    for start in range(0, len(images), batch_size):
        feature = model.features(to_input(images[start : start + batch_size]).to(device))
        features.append(feature.cpu())
        probabilities.append(torch.softmax(model.head(feature), dim=1).cpu())
    return torch.cat(probabilities), torch.cat(features).double()


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Class probabilities (N, classes) of uint8 images, for any network that maps images to logits."""
    model.eval()
    device = next(model.parameters()).device
    out = [
        torch.softmax(model(to_input(images[i : i + batch_size]).to(device)), dim=1).cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out)
