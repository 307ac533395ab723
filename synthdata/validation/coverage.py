"""Coverage and bias gaps: where the real data lives, and whether the synthetic set goes there.

- Image attributes: brightness, contrast, colourfulness (Hasler & Süsstrunk) and sharpness
  (variance of the Laplacian), binned on the real data's quantiles; a *gap* is a bin that holds
  real images of a class but (almost) no synthetic ones, a *fill* a bin the class's real train
  images leave thin that synthetic images populate.
- Feature clusters: k-means on the real features; the share of each cluster in real and in
  synthetic data, and the clusters the synthetic set misses.
- Intra-class diversity: mean pairwise feature distance within a class, synthetic against
  real; a ratio well below 1 is mode collapse.
"""

from __future__ import annotations

import numpy as np
import torch

ATTRIBUTES = ("brightness", "contrast", "colourfulness", "sharpness")


def attributes(images: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-image attributes of uint8 (N, C, H, W) images."""
    x = images.double() / 255.0
    grey = x.mean(dim=1)
    values = {
        "brightness": grey.mean(dim=(1, 2)),
        "contrast": grey.std(dim=(1, 2)),
    }
    if x.shape[1] == 3:
        rg = x[:, 0] - x[:, 1]
        yb = 0.5 * (x[:, 0] + x[:, 1]) - x[:, 2]
        values["colourfulness"] = (rg.std(dim=(1, 2)) ** 2 + yb.std(dim=(1, 2)) ** 2).sqrt() + 0.3 * (
            rg.mean(dim=(1, 2)) ** 2 + yb.mean(dim=(1, 2)) ** 2
        ).sqrt()
    else:
        values["colourfulness"] = torch.zeros(len(x), dtype=torch.float64)
    kernel = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=torch.float64).view(1, 1, 3, 3)
    laplacian = torch.nn.functional.conv2d(grey[:, None], kernel)
    values["sharpness"] = laplacian.var(dim=(1, 2, 3))
    return {k: v.numpy() for k, v in values.items()}


def bin_edges(real: np.ndarray, bins: int) -> np.ndarray:
    """Inner edges at the real data's quantiles (equal-mass bins on real data)."""
    return np.unique(np.quantile(real, np.linspace(0, 1, bins + 1)[1:-1]))


def histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return counts / max(counts.sum(), 1)


def attribute_gaps(
    real: dict[str, np.ndarray],
    synthetic: dict[str, np.ndarray],
    real_labels: np.ndarray,
    synthetic_labels: np.ndarray,
    classes: list[str],
    *,
    bins: int = 5,
    gap_share: float = 0.1,
    thin_share: float = 0.1,
) -> dict[str, object]:
    """Per class and attribute: real and synthetic bin shares, the gaps left and the bins filled.

    ``gap``: the class's real share in the bin >= ``gap_share`` and the synthetic share below a
    quarter of it. ``filled``: the real share below ``thin_share`` and the synthetic share above
    twice it (synthetic images going where the real train images are thin)."""
    report: dict[str, object] = {}
    for name in ATTRIBUTES:
        edges = bin_edges(real[name], bins)
        per_class = {}
        for label, cls in enumerate(classes):
            r, s = real[name][real_labels == label], synthetic[name][synthetic_labels == label]
            if len(r) == 0 or len(s) == 0:
                continue
            hr, hs = histogram(r, edges), histogram(s, edges)
            per_class[cls] = {
                "real": hr.round(4).tolist(),
                "synthetic": hs.round(4).tolist(),
                "gaps": [int(i) for i in np.flatnonzero((hr >= gap_share) & (hs < hr / 4))],
                "filled": [
                    int(i)
                    for i in np.flatnonzero((hr < thin_share) & (hs > 2 * np.maximum(hr, 1e-9)) & (hs >= thin_share))
                ],
            }
        report[name] = {"edges": edges.round(5).tolist(), "classes": per_class}
    return report


def cluster_coverage(
    real: torch.Tensor, synthetic: torch.Tensor, *, clusters: int = 10, seed: int = 0, miss_share: float = 0.02
) -> dict[str, object]:
    """k-means (scikit-learn) on real features; shares per cluster and the clusters missed."""
    from sklearn.cluster import KMeans

    clusters = max(1, min(clusters, len(real)))
    model = KMeans(n_clusters=clusters, n_init=4, random_state=seed).fit(real.double().numpy())
    real_share = np.bincount(model.labels_, minlength=clusters) / len(real)
    synthetic_share = np.bincount(model.predict(synthetic.double().numpy()), minlength=clusters) / max(
        len(synthetic), 1
    )
    missed = [int(i) for i in np.flatnonzero((real_share >= miss_share) & (synthetic_share < real_share / 4))]
    return {
        "real": real_share.round(4).tolist(),
        "synthetic": synthetic_share.round(4).tolist(),
        "missed": missed,
        "missed_real_share": float(real_share[missed].sum()) if missed else 0.0,
    }


def diversity(features: torch.Tensor, *, limit: int = 2000, seed: int = 0) -> float:
    """Mean pairwise Euclidean distance (on at most ``limit`` rows)."""
    if len(features) < 2:
        return float("nan")
    if len(features) > limit:
        features = features[torch.randperm(len(features), generator=torch.Generator().manual_seed(seed))[:limit]]
    distances = torch.cdist(features.float(), features.float())
    n = len(features)
    return float(distances.sum() / (n * (n - 1)))
