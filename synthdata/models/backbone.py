"""What the training loop needs from a denoiser, for the pixel base and for Stable Diffusion.

The loop works in the backbone's *training space*: pixels for the pixel base, VAE latents for
Stable Diffusion. Conditioning is always a class index; the last index is the null class.
"""

from __future__ import annotations

from typing import Any

import torch


class PixelBackbone:
    """Class-conditional ``UNet2DModel`` in pixel space (the synthdata base)."""

    def __init__(self, unet: Any, null_class: int):
        self.unet, self.null_class = unet, null_class

    @property
    def module(self) -> torch.nn.Module:
        return self.unet

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return latents

    def predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.unet(noisy, timesteps, class_labels=labels).sample


class StableDiffusionBackbone:
    """``UNet2DConditionModel`` + ``AutoencoderKL`` + CLIP text encoder, one prompt per class.

    Class ``i`` is conditioned on ``prompts[i]``; the null class on the empty prompt, as in
    classifier-free guidance for text. Prompt embeddings are computed once (the text encoder is
    frozen).
    """

    def __init__(self, unet: Any, vae: Any, text_encoder: Any, tokenizer: Any, prompts: list[str]):
        self.unet, self.vae = unet, vae
        self.null_class = len(prompts)
        tokens = tokenizer(
            [*prompts, ""],
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        with torch.no_grad():
            self.prompt_embeddings = text_encoder(tokens.input_ids)[0]
        self.scaling = float(getattr(vae.config, "scaling_factor", 0.18215))

    @property
    def module(self) -> torch.nn.Module:
        return self.unet

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.vae.encode(pixels).latent_dist.mean * self.scaling

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.vae.decode(latents / self.scaling).sample

    def predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        context = self.prompt_embeddings.to(noisy.device)[labels]
        return self.unet(noisy, timesteps, encoder_hidden_states=context).sample
