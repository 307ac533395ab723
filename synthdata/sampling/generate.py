"""Reverse diffusion with classifier-free guidance and a choice of diffusers schedulers.

DPM-Solver++ (2nd order, 20 steps) is the default; DDIM and DDPM (ancestral, all training
steps) are there for comparison. Guidance: eps = eps_null + w (eps_class - eps_null).
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from synthdata.errors import SynthdataError

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
) -> torch.Tensor:
    """Samples in [-1, 1] for ``labels`` (training-space ``shape`` per sample, decoded to pixels).

    With ``scheduler="ddpm"`` all training timesteps are used whatever ``steps`` says. A list
    of generators (one per sample) draws each sample's noise from its own generator, so a
    sample depends on its seed only, not on the batch it was drawn in.

    A batch that comes out non-finite, or with every pixel the same (what an overflowing guidance
    or a diverged model gives), raises :class:`SynthdataError`: it is never returned to be written.
    """
    sampler = make_sampler(scheduler, training_scheduler)
    sampler.set_timesteps(training_scheduler.config.num_train_timesteps if scheduler == "ddpm" else steps)
    module = backbone.module
    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    if isinstance(generator, list):
        from diffusers.utils.torch_utils import randn_tensor

        if len(generator) != len(labels):
            raise ValueError(f"{len(generator)} generators for {len(labels)} samples")
        latents = randn_tensor((len(labels), *shape), generator=generator).to(device)
    else:
        latents = torch.randn((len(labels), *shape), generator=generator).to(device)
    latents = latents * sampler.init_noise_sigma
    null = torch.full_like(labels, backbone.null_class)
    for t in sampler.timesteps:
        model_input = sampler.scale_model_input(latents, t)
        timestep = torch.full((len(labels),), int(t), dtype=torch.int64, device=device)
        if guidance == 1.0:
            eps = backbone.predict(model_input, timestep, labels.to(device))
        else:
            both = backbone.predict(
                torch.cat([model_input, model_input]), torch.cat([timestep, timestep]), torch.cat([labels, null]).to(device)
            )
            conditional, unconditional = both.chunk(2)
            eps = unconditional + guidance * (conditional - unconditional)
        latents = sampler.step(eps, t, latents, generator=generator).prev_sample
    module.train(was_training)
    samples = backbone.decode(latents)
    settings = f"scheduler {scheduler}, {len(sampler.timesteps)} steps, guidance {guidance:g}"
    if not bool(torch.isfinite(samples).all()):
        raise SynthdataError(f"sampling produced non-finite pixels ({settings}); nothing is written")
    samples = samples.clamp(-1, 1).cpu()
    if samples.numel() > 1 and bool(samples.amin() == samples.amax()):
        raise SynthdataError(f"sampling produced a blank batch, every pixel the same ({settings}); nothing is written")
    return samples
