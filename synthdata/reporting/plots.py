"""Plots written as PNG (matplotlib, headless)."""

from __future__ import annotations

import os
from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> Path:
    partial = path.with_name(f".{path.name}.part")
    figure.savefig(partial, format="png")
    _pyplot().close(figure)
    os.replace(partial, path)
    return path


def class_balance(classes: list[str], real: list[int], synthetic: list[int], path: Path, *, title: str) -> Path:
    """Images per class, real and synthetic stacked: the histogram before and after augmentation."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axis = plt.subplots(figsize=(max(5, 0.45 * len(classes) + 2), 3.2), dpi=120)
    positions = range(len(classes))
    axis.bar(positions, real, label="real", color="#4c72b0")
    axis.bar(positions, synthetic, bottom=real, label="synthetic", color="#dd8452")
    axis.set_xticks(list(positions), classes, rotation=45 if len(classes) > 6 else 0, ha="right" if len(classes) > 6 else "center", fontsize=8)
    axis.set_ylabel("train images")
    axis.set_title(title)
    axis.legend(frameon=False)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)


def loss_curve(losses: list[tuple[int, float]], path: Path, *, title: str) -> Path:
    """Training loss against step, log scale."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axis = plt.subplots(figsize=(5, 3), dpi=120)
    if losses:
        steps, values = zip(*losses, strict=True)
        axis.plot(steps, values, linewidth=1.2)
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("noise-prediction MSE")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)


def attribute_histograms(edges: dict[str, list[float]], real: dict[str, list[float]], synthetic: dict[str, list[float]],
                         path: Path, *, title: str) -> Path:  # fmt: skip
    """Real and synthetic shares per attribute bin (bins are the real data's quantiles)."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(edges)
    figure, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8), dpi=120, squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        positions = range(len(real[name]))
        axis.bar([p - 0.2 for p in positions], real[name], width=0.4, label="real", color="#4c72b0")
        axis.bar([p + 0.2 for p in positions], synthetic[name], width=0.4, label="synthetic", color="#dd8452")
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("bin (real quantiles)", fontsize=8)
        axis.set_xticks(list(positions))
        axis.tick_params(labelsize=7)
    axes[0][0].set_ylabel("share of images")
    axes[0][0].legend(frameon=False, fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return _save(figure, path)
