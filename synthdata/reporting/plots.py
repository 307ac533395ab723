"""Plots written as PNG (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthdata.atomic import commit, partial_name


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> Path:
    partial = partial_name(path)
    figure.savefig(partial, format="png")
    _pyplot().close(figure)
    commit(partial, path)
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
    axis.set_xticks(
        list(positions),
        classes,
        rotation=45 if len(classes) > 6 else 0,
        ha="right" if len(classes) > 6 else "center",
        fontsize=8,
    )
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


def attribute_histograms(
    edges: dict[str, list[float]],
    real: dict[str, list[float]],
    synthetic: dict[str, list[float]],
    path: Path,
    *,
    title: str,
) -> Path:
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


def arm_intervals(arms: dict[str, dict], metrics: list[str], path: Path, *, title: str) -> Path:
    """One panel per metric: each arm's mean with its 95% interval; arms with synthetic images
    in orange, the others in blue. A mean that could not be computed is no bar, an interval that
    could not be computed (one seed) no whisker; the bar's label says why."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(arms)
    figure, axes = plt.subplots(
        1, len(metrics), figsize=(4.2 * len(metrics), 0.42 * len(names) + 1.6), dpi=120, squeeze=False
    )
    for axis, metric in zip(axes[0], metrics, strict=True):
        figures = [arms[a][metric] for a in names]
        means = [f["mean"] or 0.0 for f in figures]
        low = [f["mean"] - f["ci95"][0] if f["ci95"] else 0.0 for f in figures]
        high = [f["ci95"][1] - f["mean"] if f["ci95"] else 0.0 for f in figures]
        colours = ["#dd8452" if "synth" in a else "#4c72b0" for a in names]
        positions = list(range(len(names)))[::-1]
        axis.barh(positions, means, xerr=[low, high], color=colours, capsize=3, height=0.6)
        for position, f in zip(positions, figures, strict=True):
            if f.get("reason"):
                axis.text(0.01 + (f["mean"] or 0.0), position, f["reason"], va="center", fontsize=7)
        axis.set_yticks(positions, names, fontsize=8)
        axis.set_xlabel(metric.replace("_", " "))
        axis.set_xlim(0, 1)
        axis.grid(axis="x", alpha=0.3)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return _save(figure, path)


def recall_heatmap(
    recall: dict[str, list[float | None]], classes: list[str], train_counts: list[int], path: Path, *, title: str
) -> Path:
    """Arms x classes, mean test recall, classes labelled with their training counts; a class
    without test images (None) is a blank cell marked n/a."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(recall)
    figure, axis = plt.subplots(figsize=(max(5, 0.5 * len(classes) + 3), 0.4 * len(names) + 1.8), dpi=120)
    grid = [[float("nan") if v is None else v for v in recall[a]] for a in names]  # NaN: imshow leaves the cell blank
    image = axis.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    axis.set_yticks(range(len(names)), names, fontsize=8)
    axis.set_xticks(
        range(len(classes)),
        [f"{c} ({n})" for c, n in zip(classes, train_counts, strict=True)],
        rotation=60,
        ha="right",
        fontsize=7,
    )
    if len(classes) <= 12:
        for i, a in enumerate(names):
            for j, value in enumerate(recall[a]):
                if value is None:
                    axis.text(j, i, "n/a", ha="center", va="center", fontsize=6, color="black")
                else:
                    axis.text(
                        j,
                        i,
                        f"{value:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if value < 0.6 else "black",
                    )
    figure.colorbar(image, ax=axis, fraction=0.03)
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    return _save(figure, path)


def training_curves(
    curves: dict[str, list[list[tuple[int, float]]]], path: Path, *, title: str, budget: int | None = None
) -> Path:
    """Validation balanced accuracy against optimizer steps, one colour per arm and one thin line
    per seed (synthetic arms dashed); a vertical line marks the chosen budget."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axis = plt.subplots(figsize=(7.5, 4.2), dpi=120)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for number, (arm, seeds) in enumerate(curves.items()):
        for index, curve in enumerate(seeds):
            if curve:
                steps, values = zip(*curve, strict=True)
                axis.plot(
                    steps,
                    values,
                    color=colours[number % len(colours)],
                    linestyle="--" if "synth" in arm else "-",
                    linewidth=1.0,
                    alpha=0.8,
                    label=arm if index == 0 else None,
                )
    if budget:
        axis.axvline(budget, color="black", linewidth=0.8, linestyle=":", label=f"budget ({budget} steps)")
    axis.set_xlabel("optimizer steps")
    axis.set_ylabel("validation balanced accuracy")
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    return _save(figure, path)


def source_distance_plot(
    pixel: Any, feature: Any, real: dict[str, Any], thresholds: dict[str, float], path: Path
) -> Path:
    """Two histograms (pixel, domain features): derived images' distance to their own source
    against held-out real images' distance to their nearest train image, with the threshold."""
    import numpy as np

    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.2), dpi=120)
    for axis, space, derived in ((axes[0], "pixel", pixel), (axes[1], "feature", feature)):
        reference = np.asarray(real[space], dtype=float)
        values = np.asarray(derived, dtype=float)
        both = np.concatenate([reference, values])
        both = both[np.isfinite(both)]
        bins = np.linspace(0, float(both.max()) if len(both) else 1.0, 40)
        axis.hist(reference, bins=bins, density=True, alpha=0.6, color="#4c72b0", label="real to nearest train")
        axis.hist(values, bins=bins, density=True, alpha=0.6, color="#dd8452", label="synthetic to its source")
        axis.axvline(thresholds[space], color="black", linestyle="--", linewidth=1)
        axis.set_xlabel("RMS pixel distance" if space == "pixel" else "domain-feature distance")
        axis.set_yticks([])
        axis.legend(frameon=False, fontsize=7)
    figure.suptitle("distance to source vs real nearest-neighbour distance", fontsize=10)
    figure.tight_layout()
    return _save(figure, path)
