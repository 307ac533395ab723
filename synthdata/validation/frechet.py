"""Fréchet distance between Gaussian fits of two feature sets.

d^2 = |mu_a - mu_b|^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^(1/2)). torchmetrics' FID hard-wires
the Inception network, so only the formula is reused here.

The last trace needs only the eigenvalues of S_a S_b (real and non-negative: both are covariance
matrices), not the matrix square root itself, so it is computed exactly without ``sqrtm``:
with fewer samples than dimensions, as the nuclear norm of A B^T / sqrt((n_a - 1)(n_b - 1))
(A, B the centred samples; its singular values squared are the non-zero eigenvalues of S_a S_b);
otherwise from the symmetric matrix S_a^(1/2) S_b S_a^(1/2), which has the same eigenvalues.
Both are a few hundred times faster than a Schur-based ``sqrtm`` of a 1,280 x 1,280 product.
"""

from __future__ import annotations

import numpy as np
import torch


def gaussian_fit(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    array = features.double().numpy()
    return array.mean(axis=0), np.cov(array, rowvar=False)


def trace_sqrt_product(a: np.ndarray, b: np.ndarray) -> float:
    """Tr((S_a S_b)^(1/2)) for the sample covariances of the rows of ``a`` and ``b``."""
    centred_a, centred_b = a - a.mean(axis=0), b - b.mean(axis=0)
    if min(len(a), len(b)) < a.shape[1]:
        cross = centred_a @ centred_b.T / np.sqrt((len(a) - 1) * (len(b) - 1))
        return float(np.linalg.svd(cross, compute_uv=False).sum())
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(sigma_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    product = root_a @ sigma_b @ root_a
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((product + product.T) / 2.0), 0.0, None)).sum())


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between feature sets ``a`` and ``b`` (rows are samples)."""
    array_a, array_b = a.double().numpy(), b.double().numpy()
    mean_gap = array_a.mean(axis=0) - array_b.mean(axis=0)
    trace_a = float(np.trace(np.atleast_2d(np.cov(array_a, rowvar=False))))
    trace_b = float(np.trace(np.atleast_2d(np.cov(array_b, rowvar=False))))
    return float((mean_gap**2).sum() + trace_a + trace_b - 2.0 * trace_sqrt_product(array_a, array_b))
