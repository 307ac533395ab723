"""Training and running the small ResNet (plain torch, CPU-friendly, deterministic per seed).

Training counts optimizer steps, not epochs, so models trained on sets of different sizes get
the same budget. Each step's batch is drawn with a generator seeded by (seed, step): uniformly,
or class-balanced (every class equally likely, then an image of that class uniformly).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from synthdata.classify.network import SmallResNet
from synthdata.config.strict import check_numbers
from synthdata.progress import progress_bar
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
        return torch.stack([padded[i, :, dy : dy + height, dx : dx + width] for i, (dy, dx) in enumerate(offsets.tolist())])

    return shift


def _draw(labels: torch.Tensor, num_classes: int, size: int, balanced: bool, generator: torch.Generator) -> torch.Tensor:
    if not balanced:
        return torch.randint(0, len(labels), (size,), generator=generator)
    counts = torch.bincount(labels, minlength=num_classes).double()
    weights = torch.where(counts[labels] > 0, 1.0 / counts[labels], torch.zeros_like(counts[labels]))
    return torch.multinomial(weights, size, replacement=True, generator=generator)


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    settings: ClassifierSettings,
    *,
    augment: Augment | None = None,
    description: str = "classifier",
) -> tuple[SmallResNet, TrainLog]:
    """A SmallResNet trained for ``settings.steps`` optimizer steps on uint8 ``images``; a run whose
    loss or weights go non-finite stops with a :class:`SynthdataError`."""
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"{len(images)} images for {len(labels)} labels")
    torch.manual_seed(settings.seed)
    device = device_for_training()
    model = SmallResNet(num_classes, channels=images.shape[1], width=settings.width).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.learning_rate, momentum=0.9, nesterov=True,
                                weight_decay=settings.weight_decay)  # fmt: skip
    warmup = max(1, settings.steps // 20)

    def rate(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, settings.steps - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    log = TrainLog(0, 0.0)
    started = time.perf_counter()
    model.train()
    with progress_bar(description, total=settings.steps) as bar:
        for step in range(settings.steps):
            generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + step)
            index = _draw(labels, num_classes, settings.batch_size, settings.balanced, generator)
            batch = to_input(images[index])
            if augment is not None:
                batch = augment(batch, generator)
            loss = nn.functional.cross_entropy(model(batch.to(device)), labels[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            log.images_seen += len(index)
            if step % 50 == 0 or step == settings.steps - 1:
                log.losses.append((step, float(loss.detach())))
                stop_if_diverged(log.losses[-1][1], step + 1, description, settings)
            bar.advance()
    stop_if_non_finite(model.state_dict(), settings.steps, description)
    log.steps, log.seconds = settings.steps, time.perf_counter() - started
    model.eval()
    return model, log


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
