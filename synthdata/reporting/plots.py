"""Plots written as PNG (matplotlib, headless)."""

from __future__ import annotations

import os
from pathlib import Path


def loss_curve(losses: list[tuple[int, float]], path: Path, *, title: str) -> Path:
    """Training loss against step, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    partial = path.with_name(f".{path.name}.part")
    figure.savefig(partial, format="png")
    plt.close(figure)
    os.replace(partial, path)
    return path
