"""The denoising training loop shared by pretraining and fine-tuning.

Standard noise-prediction objective (epsilon): x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps and the
network predicts eps. Labels are replaced by the null class with probability ``class_dropout``
so the model also learns the unconditional score (classifier-free guidance). EMA of the trained
parameters is kept (diffusers' ``EMAModel``) and copied into the model at the end.

Runs on ``accelerate`` (CPU, one or many GPUs, bf16 on GPU). Every random draw at step ``s`` is
derived from ``(seed, s)``, so a run resumed from a checkpoint continues exactly as if it had
never stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from synthdata.data.tensors import to_unit_range
from synthdata.errors import SynthdataError
from synthdata.progress import progress_bar
from synthdata.settings import check_numbers
from synthdata.training.checkpoint import load_checkpoint, save_checkpoint


@dataclass(frozen=True)
class TrainSettings:
    """Every count and rate of a denoiser run; each number's range is declared beside it."""

    steps: int = field(default=2000, metadata={"range": "[1, 10_000_000]"})
    batch_size: int = field(default=64, metadata={"range": "[1, 65_536]"})
    learning_rate: float = field(default=2e-4, metadata={"range": "(0, 1]"})
    warmup_steps: int = field(default=100, metadata={"range": "[0, 10_000_000]"})
    weight_decay: float = field(default=0.0, metadata={"range": "[0, 10]"})
    ema_decay: float = field(default=0.999, metadata={"range": "(0, 1)"})
    class_dropout: float = field(default=0.1, metadata={"range": "[0, 1)"})
    """Share of labels replaced by the null class (trains the unconditional branch for CFG)."""
    grad_clip: float = field(default=1.0, metadata={"range": "[0, 1_000_000]"})
    """Largest gradient norm; 0 clips nothing."""
    seed: int = field(default=0, metadata={"range": "seed"})
    checkpoint_every: int = field(default=200, metadata={"range": "[1, 10_000_000]"})
    log_every: int = field(default=20, metadata={"range": "[1, 10_000_000]"})
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    class_table_lr_scale: float = field(default=1.0, metadata={"range": "(0, 1000]"})
    """Learning-rate multiplier for the class-embedding table. A new domain's table starts with
    every row equal to the base's null row; at the base rate its rows barely separate in a
    short fine-tune and the model ignores the class it is asked for."""

    def __post_init__(self) -> None:
        check_numbers(self)


@dataclass(frozen=True)
class TrainResult:
    steps: int
    resumed_from: int
    losses: list[tuple[int, float]]
    """(step, mean loss over the last ``log_every`` steps)."""
    seconds: float
    """Training wall time over every run that led here (resumed runs included)."""
    images_per_second: float
    """Throughput of this invocation."""


def stop_if_diverged(loss: float, step: int, what: str, settings: Any) -> None:
    """Raise :class:`SynthdataError` when a run's loss at ``step`` is not finite: every step after
    it, and every weight it would publish, would be NaN or infinite."""
    if not math.isfinite(loss):
        rate = f"learning_rate {settings.learning_rate:g}, batch_size {settings.batch_size}"
        raise SynthdataError(
            f"{what} diverged: the loss is non-finite ({loss}) at step {step} ({rate}); nothing is published"
        )


def stop_if_non_finite(weights: dict[str, torch.Tensor], step: int, what: str) -> None:
    """Raise :class:`SynthdataError` naming the first weight holding a NaN or an infinity."""
    for name, tensor in weights.items():
        if not bool(torch.isfinite(tensor).all()):
            raise SynthdataError(
                f"{what} diverged: weight '{name}' is non-finite at step {step}; nothing is published"
            )


def _mix(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step * 7_919 + 17) % (2**63 - 1)


class _BatchOrder:
    """Epoch-wise seeded permutations; the batch of step ``s`` is a pure function of (seed, s)."""

    def __init__(self, size: int, batch_size: int, seed: int):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.int64)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(_mix(self.seed, 10_000_000 + epoch))
            self._epoch, self._perm = epoch, torch.randperm(self.size, generator=generator)
        return self._perm

    def indices(self, step: int) -> torch.Tensor:
        start, stop = step * self.batch_size, (step + 1) * self.batch_size
        parts = []
        while start < stop:  # a batch may straddle the end of an epoch
            epoch, offset = divmod(start, self.size)
            take = min(stop - start, self.size - offset)
            parts.append(self._permutation(epoch)[offset : offset + take])
            start += take
        return torch.cat(parts)


@dataclass
class _Resumed:
    """Where a run starts: its step, the losses logged so far and the record to carry on."""

    start: int
    losses: list[tuple[int, float]]
    record: dict[str, Any]

    @property
    def seconds(self) -> float:
        """Training wall time of the runs before this one."""
        return float(self.record.get("train_seconds", 0.0))


@dataclass(frozen=True)
class _NoisedBatch:
    """One step's training pairs: noisy inputs at their timesteps and labels, and the noise to predict."""

    noisy: torch.Tensor
    timesteps: torch.Tensor
    labels: torch.Tensor
    noise: torch.Tensor


def train_denoiser(
    backbone: Any,
    trainable: dict[str, torch.nn.Parameter],
    images: torch.Tensor,
    labels: torch.Tensor,
    noise_scheduler: Any,
    settings: TrainSettings,
    workdir: Path,
    *,
    record: dict[str, Any] | None = None,
    log: Callable[[dict[str, float], int], None] | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """Train ``trainable`` (parameters of ``backbone.module``) on uint8 ``images``.

    Checkpoints go to ``workdir`` every ``settings.checkpoint_every`` steps and a run restarts
    from the latest one. ``stop_after`` ends the run early at that step, checkpoint written,
    as a kill would (for tests and time-boxed runs). ``record`` is stored in every checkpoint.
    """
    from accelerate import Accelerator
    from diffusers.training_utils import EMAModel

    accelerator = Accelerator(mixed_precision=settings.mixed_precision, cpu=not torch.cuda.is_available())
    _train_only(backbone.module, trainable)
    optimizer = _optimizer(trainable, settings)
    ema = EMAModel(list(trainable.values()), decay=settings.ema_decay, use_ema_warmup=True, power=0.75, foreach=True)
    resumed = _resume(workdir, trainable, ema, optimizer, record)
    prepared, optimizer = _prepare(accelerator, backbone, optimizer)
    order = _BatchOrder(len(images), settings.batch_size, settings.seed)
    end = settings.steps if stop_after is None else min(settings.steps, stop_after)
    losses, window = resumed.losses, list[float]()
    started = time.perf_counter()
    with progress_bar("train", total=settings.steps) as bar:
        bar.advance(resumed.start)
        for step in range(resumed.start, end):
            # 1. the step's batch, noised at random timesteps (every draw derived from (seed, step))
            batch = _noised_batch(backbone, images, labels, order, noise_scheduler, settings, accelerator, step)
            # 2. the warm-up learning rate
            _warm_up(optimizer, settings, step)
            # 3. predict the noise, step the optimizer and the EMA
            window.append(_optimise(backbone, batch, trainable, optimizer, ema, settings, accelerator))
            stop_if_diverged(window[-1], step + 1, "training", settings)
            bar.advance()
            done = step + 1
            # 4. the mean loss of the window, every log_every steps
            if done % settings.log_every == 0 or done == settings.steps:
                _log_window(window, losses, done, optimizer, log)
            # 5. a checkpoint that resumes exactly here
            if accelerator.is_main_process and (done % settings.checkpoint_every == 0 or done == end):
                elapsed = resumed.seconds + time.perf_counter() - started
                _checkpoint(workdir, done, trainable, ema, optimizer, {**resumed.record, "losses": losses}, elapsed)
    seconds = time.perf_counter() - started
    backbone.unet = accelerator.unwrap_model(prepared)
    if end == settings.steps:
        ema.copy_to(list(trainable.values()))
        stop_if_non_finite(trainable, end, "training")
    trained = max(0, end - resumed.start)
    throughput = trained * settings.batch_size / seconds if seconds > 0 else 0.0
    return TrainResult(end, resumed.start, losses, resumed.seconds + seconds, throughput)


def _train_only(module: torch.nn.Module, trainable: dict[str, torch.nn.Parameter]) -> None:
    """Freeze every parameter of ``module`` but the ``trainable`` ones."""
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    for parameter in trainable.values():
        parameter.requires_grad_(True)


def _optimizer(trainable: dict[str, torch.nn.Parameter], settings: TrainSettings) -> torch.optim.AdamW:
    """AdamW over ``trainable``; the class-embedding table in a group of its own, whose ``scale``
    multiplies the learning rate by ``settings.class_table_lr_scale``."""
    table = [p for name, p in trainable.items() if name.startswith("class_embedding.")]
    rest = [p for name, p in trainable.items() if not name.startswith("class_embedding.")]
    groups = [
        g
        for g in ({"params": rest, "scale": 1.0}, {"params": table, "scale": settings.class_table_lr_scale})
        if g["params"]
    ]
    return torch.optim.AdamW(groups, lr=settings.learning_rate, weight_decay=settings.weight_decay)


def _resume(
    workdir: Path, trainable: dict[str, torch.nn.Parameter], ema: Any, optimizer: Any, record: dict[str, Any] | None
) -> _Resumed:
    """Load the latest checkpoint in ``workdir`` into the parameters, EMA and optimizer, if there
    is one; the checkpoint's record overrides the caller's ``record``."""
    meta = load_checkpoint(workdir, params=trainable, ema=ema, optimizer=optimizer)
    start = meta["step"] if meta else 0
    losses: list[tuple[int, float]] = [tuple(x) for x in meta["record"].get("losses", [])] if meta else []
    record = dict(record or {}) | ({k: v for k, v in meta["record"].items() if k != "losses"} if meta else {})
    return _Resumed(start, losses, record)


def _prepare(accelerator: Any, backbone: Any, optimizer: Any) -> tuple[Any, Any]:
    """The backbone's module in training mode and the optimizer, prepared by ``accelerate``."""
    module = backbone.module
    module.train()
    prepared, optimizer = accelerator.prepare(module, optimizer)
    # Forward through the prepared module: under DDP (accelerate launch, several GPUs) that is
    # the wrapper that averages gradients across processes; on one device it is the module.
    backbone.unet = prepared
    return prepared, optimizer


def _noised_batch(
    backbone: Any,
    images: torch.Tensor,
    labels: torch.Tensor,
    order: _BatchOrder,
    noise_scheduler: Any,
    settings: TrainSettings,
    accelerator: Any,
    step: int,
) -> _NoisedBatch:
    """This process's share of step ``step``'s batch, labels dropped to the null class at
    ``settings.class_dropout``, noised at uniformly drawn timesteps."""
    device = accelerator.device
    generator = torch.Generator().manual_seed(_mix(settings.seed, step))
    torch.manual_seed(_mix(settings.seed, step))  # dropout inside the network (LoRA dropout)
    batch = order.indices(step)[accelerator.process_index :: accelerator.num_processes]
    clean = backbone.encode(to_unit_range(images[batch]).to(device))
    target_labels = labels[batch].clone()
    dropped = torch.rand(len(batch), generator=generator) < settings.class_dropout
    target_labels[dropped] = backbone.null_class
    noise = torch.randn(clean.shape, generator=generator).to(device)
    timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(batch),), generator=generator)
    a = noise_scheduler.alphas_cumprod[timesteps].to(device).view(-1, *([1] * (clean.dim() - 1)))
    noisy = a.sqrt() * clean + (1 - a).sqrt() * noise
    return _NoisedBatch(noisy, timesteps, target_labels, noise)


def _warm_up(optimizer: Any, settings: TrainSettings, step: int) -> None:
    """Each group's learning rate at ``step``: its scale times the rate, ramped up linearly over
    ``settings.warmup_steps``."""
    for group in optimizer.param_groups:
        group["lr"] = group["scale"] * settings.learning_rate * min(1.0, (step + 1) / max(1, settings.warmup_steps))


def _optimise(
    backbone: Any,
    batch: _NoisedBatch,
    trainable: dict[str, torch.nn.Parameter],
    optimizer: Any,
    ema: Any,
    settings: TrainSettings,
    accelerator: Any,
) -> float:
    """One optimizer step on the noise-prediction loss of ``batch`` (gradients clipped), then
    the EMA's; returns the loss."""
    device = accelerator.device
    with accelerator.autocast():
        prediction = backbone.predict(batch.noisy, batch.timesteps.to(device), batch.labels.to(device))
    loss = torch.nn.functional.mse_loss(prediction.float(), batch.noise)
    accelerator.backward(loss)
    if settings.grad_clip > 0:
        accelerator.clip_grad_norm_(list(trainable.values()), settings.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    ema.step(list(trainable.values()))
    return float(loss.detach())


def _log_window(
    window: list[float],
    losses: list[tuple[int, float]],
    done: int,
    optimizer: Any,
    log: Callable[[dict[str, float], int], None] | None,
) -> None:
    """Append the window's mean loss at step ``done`` to ``losses``, empty the window, and pass
    the mean and the learning rate to ``log``."""
    mean = sum(window) / len(window)
    losses.append((done, mean))
    window.clear()
    if log is not None:
        log({"loss": mean, "lr": optimizer.param_groups[0]["lr"]}, done)


def _checkpoint(
    workdir: Path,
    done: int,
    trainable: dict[str, torch.nn.Parameter],
    ema: Any,
    optimizer: Any,
    record: dict[str, Any],
    seconds: float,
) -> None:
    """A checkpoint of the run after ``done`` steps, ``seconds`` of training in all."""
    stop_if_non_finite(trainable, done, "training")  # a checkpoint resumes only what can finish
    record = {**record, "train_seconds": seconds}
    save_checkpoint(workdir, step=done, params=trainable, ema=ema, optimizer=optimizer, record=record)
