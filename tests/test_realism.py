"""Fréchet distance against cases with known answers, and the EfficientNet-Lite0 feature space."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthdata.validation.features import EffNetFeatures
from synthdata.validation.frechet import frechet_distance


def _gaussian(n: int, dim: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(shift, scale, size=(n, dim)))


def test_identical_sets_have_zero_distance():
    a = _gaussian(500, 8, 0)
    assert frechet_distance(a, a.clone()) == pytest.approx(0.0, abs=1e-6)


def test_shifted_gaussians_give_the_squared_shift():
    # Same covariance, means 0 and 2 in 8 dims: d^2 = 8 * 2^2 = 32 (up to sampling noise).
    a, b = _gaussian(20_000, 8, 0), _gaussian(20_000, 8, 1, shift=2.0)
    assert frechet_distance(a, b) == pytest.approx(32.0, rel=0.03)


def test_scaled_gaussians_give_the_covariance_term():
    # N(0, I) vs N(0, 4I) in 4 dims: Tr(I + 4I - 2*2I) = 4.
    a, b = _gaussian(20_000, 4, 0), _gaussian(20_000, 4, 1, scale=2.0)
    assert frechet_distance(a, b) == pytest.approx(4.0, rel=0.05)


def test_a_collapsed_set_is_far_from_a_diverse_one():
    diverse = _gaussian(2_000, 8, 0)
    collapsed = diverse[:1].repeat(2_000, 1) + 1e-3 * _gaussian(2_000, 8, 1)
    assert frechet_distance(collapsed, diverse) > 5.0  # ~Tr(I) = 8 lost with the covariance


def test_effnet_features_load_offline_and_separate_images():
    features = EffNetFeatures(input_size=64, batch_size=4)
    grey = torch.full((2, 1, 28, 28), 128, dtype=torch.uint8)
    colour = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    f_grey, f_colour = features(grey), features(colour)
    assert f_grey.shape == (2, 1280) and f_colour.shape == (2, 1280)
    assert torch.allclose(f_grey[0], f_grey[1]) and not torch.allclose(f_grey[0], f_colour[0])
    assert torch.equal(features(colour), f_colour)  # deterministic, eval mode
