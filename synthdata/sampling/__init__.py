"""Generation from a trained denoiser."""
