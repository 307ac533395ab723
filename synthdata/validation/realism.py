"""Realism and diversity of a synthetic set against real images, in a given feature space.

- Fréchet distance (``frechet.py``) and KID (unbiased polynomial-kernel MMD over random subsets;
  the kernel and estimator are torchmetrics');
- precision and recall (Kynkäänniemi et al. 2019): the share of synthetic samples inside the
  real k-NN manifold, and of real samples inside the synthetic one;
- density and coverage (Naeem et al. 2020): how many real k-NN balls hold a synthetic sample
  on average (1 is real-like), and the share of real balls holding at least one.

Every figure comes with a 95% bootstrap interval and with its *floor*: the same metric
between two disjoint real samples of the same size, because an absolute distance on a small
domain set means little without it. Sizes are made equal (the larger side is subsampled) so
the figure and its floor are comparable. k-NN distances are computed in chunks: memory grows
with the set, not with its square.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from synthdata.validation.frechet import frechet_distance

Metric = Callable[..., dict[str, float]]
"""(synthetic or second real sample, real reference, optional multiplicities of each) -> named figures."""


def _chunked_min_k(
    queries: torch.Tensor, points: torch.Tensor, k: int, *, exclude_self: bool = False, chunk: int = 1024
) -> torch.Tensor:
    """Distance from each query to its k-th nearest point (the query itself left out when
    ``exclude_self`` and ``queries is points``)."""
    out = []
    for start in range(0, len(queries), chunk):
        block = torch.cdist(queries[start : start + chunk].float(), points.float())
        if exclude_self:
            rows = torch.arange(block.shape[0])
            block[rows, rows + start] = float("inf")
        out.append(block.topk(k, dim=1, largest=False).values[:, -1])
    return torch.cat(out)


def _ball_weights(
    queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, weights: torch.Tensor, chunk: int = 1024
) -> torch.Tensor:
    """For each query, the total weight of the balls (centre, radius) that contain it."""
    out = []
    for start in range(0, len(queries), chunk):
        block = torch.cdist(queries[start : start + chunk].float(), centres.float())
        out.append(((block <= radii[None, :].float()).double() * weights[None, :]).sum(dim=1))
    return torch.cat(out)


def _any_query_in_ball(
    queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 1024
) -> torch.Tensor:
    """For each ball, whether any query falls inside it."""
    hit = torch.zeros(len(centres), dtype=torch.bool)
    for start in range(0, len(queries), chunk):
        block = torch.cdist(queries[start : start + chunk].float(), centres.float())
        hit |= (block <= radii[None, :].float()).any(dim=0)
    return hit


def prdc(
    fake: torch.Tensor,
    real: torch.Tensor,
    k: int = 5,
    *,
    fake_weights: torch.Tensor | None = None,
    real_weights: torch.Tensor | None = None,
) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` against ``real`` (features, rows).

    Weights are bootstrap multiplicities of the rows being counted (0: not drawn): synthetic
    rows for precision and density, real rows for recall and coverage. The manifolds (k-NN
    balls) are always those of the whole sets, as for the point estimate: rebuilding them from
    a resample would make a row drawn twice its own nearest neighbour and drop a third of the
    balls, biasing every figure."""
    k = min(k, len(real) - 1, len(fake) - 1)
    if k < 1:
        raise ValueError("precision/recall need at least two samples on each side")
    wf = torch.ones(len(fake), dtype=torch.float64) if fake_weights is None else fake_weights.double()
    wr = torch.ones(len(real), dtype=torch.float64) if real_weights is None else real_weights.double()
    real_radii = _chunked_min_k(real, real, k, exclude_self=True)
    fake_radii = _chunked_min_k(fake, fake, k, exclude_self=True)
    inside_real = _ball_weights(fake, real, real_radii, torch.ones(len(real), dtype=torch.float64))
    inside_fake = _ball_weights(real, fake, fake_radii, torch.ones(len(fake), dtype=torch.float64))
    covered = _any_query_in_ball(fake, real, real_radii)
    return {
        "precision": float((wf * (inside_real > 0)).sum() / wf.sum()),
        "recall": float((wr * (inside_fake > 0)).sum() / wr.sum()),
        "density": float((wf * inside_real).sum() / (k * wf.sum())),
        "coverage": float((wr * covered).sum() / wr.sum()),
    }


def kid(fake: torch.Tensor, real: torch.Tensor, *, subsets: int = 20, subset_size: int = 500, seed: int = 0) -> float:
    """Kernel distance (KID): mean unbiased MMD^2 with the cubic polynomial kernel over random
    equal-size subsets (torchmetrics' estimator, here on any feature space)."""
    from torchmetrics.image.kid import poly_mmd

    size = min(subset_size, len(fake), len(real))
    if size < 2:
        raise ValueError("KID needs at least two samples on each side")
    generator = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        a = fake[torch.randperm(len(fake), generator=generator)[:size]].double()
        b = real[torch.randperm(len(real), generator=generator)[:size]].double()
        values.append(float(poly_mmd(b, a)))
    return float(np.mean(values))


@dataclass
class MetricEstimate:
    """One metric's estimate: its value, a 95% interval over resamples, and the real-vs-real floor."""

    value: float
    ci95: tuple[float, float]
    floor: float
    n: int

    def as_dict(self) -> dict[str, object]:
        return {"value": self.value, "ci95": list(self.ci95), "floor": self.floor, "n": self.n}


def _all(
    metrics: list[Metric],
    a: torch.Tensor,
    b: torch.Tensor,
    wa: torch.Tensor | None = None,
    wb: torch.Tensor | None = None,
) -> dict[str, float]:
    values: dict[str, float] = {}
    for metric in metrics:
        values.update(metric(a, b, wa, wb))
    return values


def _intervals(
    metrics: list[Metric], fake: torch.Tensor, real: torch.Tensor, resamples: int, seed: int, point: dict[str, float]
) -> dict[str, tuple[float, float]]:
    """95% bootstrap interval of each figure: both sides resampled with replacement, passed as
    multiplicities over their rows; the percentile interval is shifted by the bootstrap's own
    estimate of bias (mean of the resamples minus the figure). Fréchet distance needs this: a
    resample repeats rows, which shrinks the effective sample, and FD grows as samples shrink,
    so plain percentiles of a high-dimensional FD sit wholly above the figure."""
    generator = torch.Generator().manual_seed(seed)
    values: dict[str, list[float]] = {}
    for _ in range(resamples):
        wa = torch.bincount(torch.randint(0, len(fake), (len(fake),), generator=generator), minlength=len(fake))
        wb = torch.bincount(torch.randint(0, len(real), (len(real),), generator=generator), minlength=len(real))
        for name, value in _all(metrics, fake, real, wa, wb).items():
            values.setdefault(name, []).append(value)
    out = {}
    for name, v in values.items():
        bias = float(np.mean(v)) - point[name]
        out[name] = tuple(float(x) - bias for x in np.percentile(v, [2.5, 97.5]))
    return out


def split_real(real: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint real samples of ``n`` rows each (n is cut to half the pool if larger)."""
    n = min(n, len(real) // 2)
    order = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))
    return real[order[:n]], real[order[n : 2 * n]]


def measure(
    fake: torch.Tensor, real: torch.Tensor, metrics: list[Metric], *, resamples: int = 10, seed: int = 0
) -> dict[str, MetricEstimate]:
    """Each figure of ``fake`` against a real reference, with interval and floor.

    The real pool is split into a reference and a floor sample of equal size ``n`` (at most
    half the pool and at most the synthetic count); the synthetic set is subsampled to ``n``."""
    reference, second = split_real(real, len(fake), seed)
    n = len(reference)
    if n < 3:
        raise ValueError(f"too few images for a figure with a floor ({len(real)} real, {len(fake)} synthetic)")
    fake = fake[torch.randperm(len(fake), generator=torch.Generator().manual_seed(seed + 1))[:n]]
    values, floors = _all(metrics, fake, reference), _all(metrics, second, reference)
    nan = (float("nan"), float("nan"))
    intervals = _intervals(metrics, fake, reference, resamples, seed + 2, values) if resamples >= 2 else {}
    return {name: MetricEstimate(values[name], intervals.get(name, nan), floors[name], n) for name in values}


def standard_metrics(space: str, *, k: int = 5, kid_subset: int = 500) -> list[Metric]:
    """FD, KID, precision, recall, density and coverage, named for their feature space
    (``FD-EffNet``, ``KID-domain``, ...): they are not Inception FID/KID."""
    return [
        lambda a, b, wa=None, wb=None: {f"FD-{space}": frechet_distance(_expand(a, wa), _expand(b, wb))},
        lambda a, b, wa=None, wb=None: {
            f"KID-{space}": kid(_expand(a, wa), _expand(b, wb), subset_size=kid_subset, subsets=10)
        },
        lambda a, b, wa=None, wb=None: {
            f"{name}-{space}": value for name, value in prdc(a, b, k, fake_weights=wa, real_weights=wb).items()
        },
    ]


def _expand(rows: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Rows repeated by their multiplicity (the bootstrap resample itself)."""
    return rows if weights is None else rows.repeat_interleave(weights, dim=0)
