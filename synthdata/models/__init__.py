"""Diffusion models: the class-conditional pixel base, LoRA adapters, Stable-Diffusion loading."""
