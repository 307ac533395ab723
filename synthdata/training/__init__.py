"""Diffusion training: tensors from dataset folders, the denoising loop, exact checkpoints."""
