"""Fréchet distance between Gaussian fits of two feature sets.

d^2 = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)). The matrix square root is scipy's
``sqrtm``; torchmetrics' FID hard-wires the Inception network, so only the formula is reused here.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg


def gaussian_fit(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    array = features.double().numpy()
    return array.mean(axis=0), np.cov(array, rowvar=False)


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between feature sets ``a`` and ``b`` (rows are samples)."""
    mu_a, sigma_a = gaussian_fit(a)
    mu_b, sigma_b = gaussian_fit(b)
    root, _ = linalg.sqrtm(sigma_a @ sigma_b, disp=False)
    if not np.isfinite(root).all():
        offset = np.eye(len(sigma_a)) * 1e-6
        root = linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    root = root.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.trace(root))
