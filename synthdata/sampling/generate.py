"""Reverse diffusion with classifier-free guidance and a choice of diffusers schedulers.

DPM-Solver++ (2nd order, 20 steps) is the default; DDIM and DDPM (ancestral, all training
steps) are there for comparison. Guidance: eps = eps_null + w (eps_class - eps_null).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from synthdata.errors import SynthdataError
from synthdata.sampling.guide import ClassifierGuide

SchedulerName = Literal["dpm-solver++", "ddim", "ddpm"]


def make_sampler(name: SchedulerName, training_scheduler: Any) -> Any:
    """A sampling scheduler that shares the training schedule's betas and prediction type."""
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    # Pass every training setting explicitly. diffusers marks settings that were left at their
    # default in ``_use_default_values`` and from_config then takes the *sampler's* default
    # instead: for the cosine schedule a fresh scheduler would start DPM-Solver at t=999
    # (linspace), where alpha_bar is ~0, and saturate every sample, while the same scheduler
    # saved and reloaded would start at t=950 (leading).
    config = {k: v for k, v in training_scheduler.config.items() if k != "_use_default_values"}
    if name == "dpm-solver++":
        return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++", solver_order=2)
    if name == "ddim":
        return DDIMScheduler.from_config(config)
    if name == "ddpm":
        return DDPMScheduler.from_config(config)
    raise ValueError(f"unknown scheduler {name!r}")


@torch.no_grad()
def generate(
    backbone: Any,
    training_scheduler: Any,
    labels: torch.Tensor,
    *,
    shape: tuple[int, int, int],
    scheduler: SchedulerName = "dpm-solver++",
    steps: int = 20,
    guidance: float = 2.0,
    generator: torch.Generator | list[torch.Generator] | None = None,
    sources: torch.Tensor | None = None,
    strengths: Sequence[float] | None = None,
    partners: torch.Tensor | None = None,
    weights: Sequence[float] | None = None,
    guide: ClassifierGuide | None = None,
) -> torch.Tensor:
    """Samples in [-1, 1] for ``labels`` (training-space ``shape`` per sample, decoded to pixels).

    With ``scheduler="ddpm"`` all training timesteps are used whatever ``steps`` says. A list
    of generators (one per sample) draws each sample's noise from its own generator, so a
    sample depends on its seed only, not on the batch it was drawn in.

    Real-anchored generation (SDEdit): with ``sources`` (pixels in [-1, 1], one per sample) and
    ``strengths``, sample ``i`` starts from its source noised to the timestep a fraction
    ``strengths[i]`` of the way up the schedule and is denoised from there, as diffusers'
    img2img pipelines read ``strength``: 1 is plain sampling from noise (the same image as
    without a source for the same seed), 0 returns the source. With ``partners`` and
    ``weights`` as well, both images are DDIM-inverted to that timestep with the class
    condition, spherically interpolated (weight 0 is the source's inversion, 1 the partner's)
    and denoised. The noise is drawn exactly as without sources, so a sample's bytes depend on
    its seed, source(s), strength and weight only.

    With ``guide`` (pixel-space backbones only), each step's clean-image estimate is nudged
    along the guide classifier's normalised gradient of ``log p(class | x0)``
    (:mod:`synthdata.sampling.guide`).

    A batch that comes out non-finite, or with every pixel the same (what an overflowing guidance
    or a diverged model gives), raises :class:`SynthdataError`: it is never returned to be written.
    """
    _check_anchors(backbone, sources, strengths, partners, weights, guide)
    sampling = _Sampling(backbone, training_scheduler, scheduler, steps, guidance, guide)
    total = len(sampling.sampler().timesteps)
    module = backbone.module
    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    # 1. every sample's noise, drawn exactly as without sources
    noise = _initial_noise(len(labels), shape, generator, device)
    labels = labels.to(device)
    # 2. where each sample starts in the schedule
    starts = [0] * len(labels) if strengths is None else [start_index(total, float(s)) for s in strengths]
    if len(starts) != len(labels):
        raise ValueError(f"{len(starts)} strengths for {len(labels)} samples")
    # 3. the real images to start from, in training space
    anchors = _Anchors(
        backbone.encode(sources.to(device)) if sources is not None else None,
        backbone.encode(partners.to(device)) if partners is not None else None,
        weights,
    )
    # 4. the samples that start at the same step, denoised together
    latents = _denoise_by_start(sampling, starts, total, noise, labels, generator, anchors)
    module.train(was_training)
    # 5. decoded, and refused when the batch is not one to write
    return _checked_pixels(backbone.decode(latents), f"scheduler {scheduler}, {total} steps, guidance {guidance:g}")


@dataclass(frozen=True)
class _Sampling:
    """How one :func:`generate` call samples: the model, its training schedule and the sampler's settings."""

    backbone: Any
    training_scheduler: Any
    scheduler: SchedulerName
    steps: int
    guidance: float
    guide: ClassifierGuide | None

    def sampler(self) -> Any:
        """A fresh sampling scheduler with its timesteps set."""
        sampler = make_sampler(self.scheduler, self.training_scheduler)
        sampler.set_timesteps(_sampling_steps(self.scheduler, self.steps, self.training_scheduler))
        return sampler


@dataclass(frozen=True)
class _Anchors:
    """The real images samples start from, in training space: sources, and partners with their weights."""

    clean: torch.Tensor | None
    other: torch.Tensor | None
    weights: Sequence[float] | None


def _denoise_by_start(
    sampling: _Sampling,
    starts: list[int],
    total: int,
    noise: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator | list[torch.Generator] | None,
    anchors: _Anchors,
) -> torch.Tensor:
    """The denoised latents of every sample, those with the same start step in one batch."""
    generators = generator if isinstance(generator, list) else None
    latents = torch.empty_like(noise)
    for start in sorted(set(starts)):
        rows = [i for i, s in enumerate(starts) if s == start]
        index = torch.tensor(rows, dtype=torch.int64, device=noise.device)
        gens = [generators[i] for i in rows] if generators is not None else generator
        if start >= total:  # strength 0: nothing to denoise
            latents[index] = anchors.clean[index]
            continue
        # A fresh sampler per start: multistep solvers keep state from one step to the next.
        part = sampling.sampler()
        x = _start_latents(sampling, part, start, rows, index, noise, labels, anchors)
        latents[index] = _denoise(
            sampling.backbone, part, x, labels[index], sampling.guidance, gens, part.timesteps[start:], sampling.guide
        )
    return latents


def _start_latents(
    sampling: _Sampling,
    sampler: Any,
    start: int,
    rows: list[int],
    index: torch.Tensor,
    noise: torch.Tensor,
    labels: torch.Tensor,
    anchors: _Anchors,
) -> torch.Tensor:
    """The latents that samples ``rows`` (``index`` on the device) start from at step ``start``
    of ``sampler``: noise; their sources noised (img2img); or sources and partners DDIM-inverted
    and spherically interpolated (interpolate)."""
    if start == 0 or anchors.clean is None:
        return noise[index] * sampler.init_noise_sigma
    if hasattr(sampler, "set_begin_index"):
        sampler.set_begin_index(start)
    if anchors.other is None:
        return sampler.add_noise(anchors.clean[index], noise[index], sampler.timesteps[start : start + 1])
    ends = sampler.timesteps[start:].flip(0).tolist()
    a = ddim_invert(sampling.backbone, sampling.training_scheduler, anchors.clean[index], labels[index], ends)
    b = ddim_invert(sampling.backbone, sampling.training_scheduler, anchors.other[index], labels[index], ends)
    return slerp(a, b, torch.tensor([float(anchors.weights[i]) for i in rows], device=index.device))


def _check_anchors(
    backbone: Any,
    sources: torch.Tensor | None,
    strengths: Sequence[float] | None,
    partners: torch.Tensor | None,
    weights: Sequence[float] | None,
    guide: ClassifierGuide | None,
) -> None:
    """Refuse arguments that do not go together (see :func:`generate`)."""
    if (strengths is None) != (sources is None) or (partners is None) != (weights is None):
        raise ValueError("sources come with strengths, partners with weights")
    if partners is not None and sources is None:
        raise ValueError("partners need sources")
    if guide is not None and getattr(backbone, "vae", None) is not None:
        raise SynthdataError("classifier guidance works on pixel-space bases only, not through a VAE")


def _initial_noise(
    count: int, shape: tuple[int, int, int], generator: torch.Generator | list[torch.Generator] | None, device: Any
) -> torch.Tensor:
    """``count`` samples of noise of ``shape``: from one generator, or each from its own."""
    if isinstance(generator, list):
        from diffusers.utils.torch_utils import randn_tensor

        if len(generator) != count:
            raise ValueError(f"{len(generator)} generators for {count} samples")
        return randn_tensor((count, *shape), generator=generator).to(device)
    return torch.randn((count, *shape), generator=generator).to(device)


def _checked_pixels(samples: torch.Tensor, settings: str) -> torch.Tensor:
    """``samples`` clamped to [-1, 1] on the CPU; a :class:`SynthdataError` when they are
    non-finite or blank (made with ``settings``)."""
    if not bool(torch.isfinite(samples).all()):
        raise SynthdataError(f"sampling produced non-finite pixels ({settings}); nothing is written")
    samples = samples.clamp(-1, 1).cpu()
    if samples.numel() > 1 and bool(samples.amin() == samples.amax()):
        raise SynthdataError(f"sampling produced a blank batch, every pixel the same ({settings}); nothing is written")
    return samples


def _sampling_steps(scheduler: SchedulerName, steps: int, training_scheduler: Any) -> int:
    return int(training_scheduler.config.num_train_timesteps) if scheduler == "ddpm" else steps


def start_index(total: int, strength: float) -> int:
    """Where denoising starts in a schedule of ``total`` steps for ``strength`` in [0, 1]
    (diffusers' img2img: the last ``int(total * strength)`` steps are run)."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength {strength} outside [0, 1]")
    return total - min(int(total * strength), total)


def _denoise(
    backbone: Any,
    sampler: Any,
    latents: torch.Tensor,
    labels: torch.Tensor,
    guidance: float,
    generator: Any,
    timesteps: torch.Tensor,
    guide: ClassifierGuide | None = None,
) -> torch.Tensor:
    null = torch.full_like(labels, backbone.null_class)
    prediction = sampler.config.prediction_type
    for t in timesteps:
        model_input = sampler.scale_model_input(latents, t)
        timestep = torch.full((len(labels),), int(t), dtype=torch.int64, device=latents.device)
        if guidance == 1.0:
            eps = backbone.predict(model_input, timestep, labels)
        else:
            both = backbone.predict(
                torch.cat([model_input, model_input]), torch.cat([timestep, timestep]), torch.cat([labels, null])
            )
            conditional, unconditional = both.chunk(2)
            eps = unconditional + guidance * (conditional - unconditional)
        if guide is not None:
            alpha = sampler.alphas_cumprod.to(latents.device)[int(t)]
            clean = to_clean(eps, latents, alpha, prediction)
            clean = clean + guide.scale * guide.direction(clean.clamp(-1, 1), labels)
            eps = from_clean(clean, latents, alpha, prediction)
        latents = sampler.step(eps, t, latents, generator=generator).prev_sample
    return latents


def to_clean(output: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, prediction: str) -> torch.Tensor:
    """The clean-image estimate of a model ``output`` at noisy ``x`` (cumulative alpha ``alpha``)."""
    if prediction == "epsilon":
        return (x - (1 - alpha).sqrt() * output) / alpha.sqrt()
    if prediction == "v_prediction":
        return alpha.sqrt() * x - (1 - alpha).sqrt() * output
    if prediction == "sample":
        return output
    raise ValueError(f"unknown prediction type {prediction!r}")


def from_clean(clean: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, prediction: str) -> torch.Tensor:
    """The model output that :func:`to_clean` maps to ``clean`` at ``x`` (its inverse)."""
    if prediction == "epsilon":
        return (x - alpha.sqrt() * clean) / (1 - alpha).sqrt()
    if prediction == "v_prediction":
        return (alpha.sqrt() * x - clean) / (1 - alpha).sqrt()
    if prediction == "sample":
        return clean
    raise ValueError(f"unknown prediction type {prediction!r}")


def ddim_invert(
    backbone: Any, training_scheduler: Any, clean: torch.Tensor, labels: torch.Tensor, timesteps: list[int]
) -> torch.Tensor:
    """Deterministic DDIM inversion of ``clean`` (training space) up through ``timesteps``
    (ascending), class-conditional without guidance: the noisy latent at the last one from
    which DDIM would come back to ``clean``."""
    alphas = training_scheduler.alphas_cumprod.to(clean.device, torch.float64)
    prediction = training_scheduler.config.prediction_type
    x = clean.double()
    previous_alpha = torch.tensor(1.0, dtype=torch.float64, device=clean.device)
    previous_t = timesteps[0]  # the clean image is read at the first timestep (no model at t = -1)
    for t in timesteps:
        timestep = torch.full((len(labels),), int(previous_t), dtype=torch.int64, device=clean.device)
        output = backbone.predict(x.to(clean.dtype), timestep, labels).double()
        at = alphas[int(previous_t)]
        if prediction == "epsilon":
            eps = output
        elif prediction == "v_prediction":
            eps = at.sqrt() * output + (1 - at).sqrt() * x
        elif prediction == "sample":
            eps = (x - at.sqrt() * output) / (1 - at).sqrt()
        else:
            raise ValueError(f"unknown prediction type {prediction!r}")
        estimate = (x - (1 - previous_alpha).sqrt() * eps) / previous_alpha.sqrt()
        alpha = alphas[int(t)]
        x = alpha.sqrt() * estimate + (1 - alpha).sqrt() * eps
        previous_alpha, previous_t = alpha, t
    return x.to(clean.dtype)


def slerp(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation per sample (weight 0 gives ``a``, 1 gives ``b`` exactly); nearly
    parallel pairs fall back to linear interpolation."""
    flat_a, flat_b = a.flatten(1).double(), b.flatten(1).double()
    w = weight.double().reshape(-1, 1)
    cosine = (flat_a * flat_b).sum(1, keepdim=True) / (
        flat_a.norm(dim=1, keepdim=True) * flat_b.norm(dim=1, keepdim=True)
    ).clamp_min(1e-12)
    theta = cosine.clamp(-1, 1).acos()
    sine = theta.sin()
    linear = sine.abs() < 1e-6
    safe = torch.where(linear, torch.ones_like(sine), sine)
    wa = torch.where(linear, 1 - w, ((1 - w) * theta).sin() / safe)
    wb = torch.where(linear, w, (w * theta).sin() / safe)
    mixed = (wa * flat_a + wb * flat_b).reshape(a.shape).to(a.dtype)
    exact_a, exact_b = (weight == 0).reshape(-1, *[1] * (a.dim() - 1)), (weight == 1).reshape(-1, *[1] * (a.dim() - 1))
    return torch.where(exact_a, a, torch.where(exact_b, b, mixed))
