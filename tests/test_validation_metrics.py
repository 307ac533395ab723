"""Each validation metric on a case with a known answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthdata.config.recipe import GateSettings
from synthdata.validation.coverage import attributes, cluster_coverage, diversity
from synthdata.validation.figures import ValidationFigures
from synthdata.validation.frechet import frechet_distance
from synthdata.validation.gates import GateError, enforce, evaluate_gates
from synthdata.validation.memorisation import memorisation, pixel_vectors
from synthdata.validation.realism import kid, measure, prdc, standard_metrics


def gaussian(n: int, dim: int, shift: float = 0.0, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


def test_identical_sets_score_perfectly():
    a = gaussian(400, 8)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # Each point also sits in its own ball: density (k + 1) / k for a set against itself.
    assert prdc(a, a) == {"precision": 1.0, "recall": 1.0, "density": pytest.approx(1.2, abs=0.01), "coverage": 1.0}
    # KID is unbiased: ~0 (either sign) for a set against itself, far below a shifted copy's.
    assert abs(kid(a, a, subset_size=200)) < 0.05 * kid(a + 1.0, a, subset_size=200)
    same = prdc(gaussian(2000, 4, seed=20), gaussian(2000, 4, seed=21))
    assert same["density"] == pytest.approx(1.0, abs=0.1) and same["coverage"] > 0.9


def test_shifted_gaussians_give_the_squared_shift():
    a, b = gaussian(4000, 4, seed=1), gaussian(4000, 4, shift=1.0, seed=2)
    # |mu_a - mu_b|^2 = 4 * 1^2; equal unit covariances add ~0.
    assert frechet_distance(a, b) == pytest.approx(4.0, rel=0.05)
    assert kid(a, b) > 10 * abs(kid(a, gaussian(4000, 4, seed=3)))
    far = prdc(gaussian(500, 4, shift=10.0, seed=4), gaussian(500, 4, seed=5))
    assert far["precision"] == 0.0 and far["recall"] == 0.0 and far["coverage"] == 0.0


def test_a_collapsed_set_has_no_recall_or_diversity():
    real = gaussian(300, 6, seed=6)
    collapsed = real[:1].repeat(300, 1) + 1e-6 * gaussian(300, 6, seed=7)
    scores = prdc(collapsed, real)
    assert scores["recall"] < 0.05 and scores["coverage"] < 0.05
    assert diversity(collapsed) < 1e-3 * diversity(real)


def test_figures_come_with_a_floor_and_an_interval():
    real, fake = gaussian(600, 4, seed=8), gaussian(300, 4, shift=3.0, seed=9)
    figures = measure(fake, real, standard_metrics("test"), resamples=5, seed=0)
    fd = figures["FD-test"]
    assert fd.n == 300 and fd.floor < 0.5 < fd.value
    assert fd.ci95[0] <= fd.ci95[1] and fd.ci95[0] > fd.floor
    assert figures["precision-test"].floor > 0.8 and figures["precision-test"].value < 0.3


def test_bootstrap_intervals_bracket_the_k_nn_figures():
    """A resample's duplicates must not read as perfect matches: intervals sit around the value."""
    real, fake = gaussian(800, 4, seed=13), gaussian(400, 4, shift=0.5, seed=14)
    figures = measure(fake, real, standard_metrics("test"), resamples=30, seed=1)
    for name in ("precision-test", "recall-test", "density-test", "coverage-test", "FD-test"):
        low, high = figures[name].ci95
        assert low <= figures[name].value <= high, (name, figures[name])


def test_bootstrap_intervals_bracket_a_high_dimensional_frechet_distance():
    """Few samples in many dimensions: a resample's repeated rows inflate FD; the interval is
    shifted back by the bootstrap's bias estimate so it sits around the figure."""
    real, fake = gaussian(400, 64, seed=3), gaussian(150, 64, shift=0.3, seed=4)
    figures = measure(fake, real, standard_metrics("test"), resamples=20, seed=2)
    low, high = figures["FD-test"].ci95
    assert low <= figures["FD-test"].value <= high, figures["FD-test"]


def test_copies_of_the_training_set_are_flagged_and_fresh_samples_are_not():
    generator = torch.Generator().manual_seed(0)
    training = torch.randint(0, 256, (200, 3, 8, 8), generator=generator, dtype=torch.uint8)
    heldout = torch.randint(0, 256, (200, 3, 8, 8), generator=generator, dtype=torch.uint8)
    copies = (
        (training[:50].int() + torch.randint(-2, 3, (50, 3, 8, 8), generator=generator)).clamp(0, 255).to(torch.uint8)
    )
    fresh = torch.randint(0, 256, (100, 3, 8, 8), generator=generator, dtype=torch.uint8)
    result = memorisation(
        "pixel", pixel_vectors(torch.cat([copies, fresh])), pixel_vectors(training), pixel_vectors(heldout)
    )
    assert result.flagged[:50].all()
    assert result.flagged[50:].float().mean() < 0.05
    assert (result.neighbours[:50] == torch.arange(50)).all()


def test_attributes_and_clusters():
    dark = torch.full((10, 3, 8, 8), 20, dtype=torch.uint8)
    bright = torch.full((10, 3, 8, 8), 230, dtype=torch.uint8)
    values = attributes(torch.cat([dark, bright]))
    assert (values["brightness"][:10] < 0.1).all() and (values["brightness"][10:] > 0.9).all()
    assert np.allclose(values["contrast"], 0) and np.allclose(values["sharpness"], 0)
    real = torch.cat([gaussian(100, 2, seed=10), gaussian(100, 2, shift=20.0, seed=11)])
    one_mode = gaussian(100, 2, seed=12)
    result = cluster_coverage(real, one_mode, clusters=2)
    assert len(result["missed"]) == 1 and result["missed_real_share"] == pytest.approx(0.5)


def test_gates_name_metric_class_value_and_threshold():
    figures = ValidationFigures(
        overall={"FD-domain": {"value": 30.0, "floor": 10.0}, "precision-domain": {"value": 0.9, "floor": 0.95}},
        classes={"rare": {"fill": 0.5, "near_copy_fraction": 0.0, "diversity_ratio": float("nan")}},
        histogram={},
        attributes={},
        clusters={},
        memorisation={},
        lineage={},
    )
    results = evaluate_gates(
        GateSettings(max_fd_ratio=2.0, min_precision=0.8, min_fill=0.9, min_diversity_ratio=0.5), figures
    )
    failed = {(r.gate, r.scope) for r in results if not r.passed}
    assert failed == {("max_fd_ratio", "overall"), ("min_fill", "rare")}
    with pytest.raises(GateError, match=r"fill for rare is 0\.5, gate min_fill needs >= 0\.9") as error:
        enforce(results)
    assert "FD-domain / floor for overall is 3" in str(error.value)
