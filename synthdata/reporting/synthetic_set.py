"""The sample stage's report: the plan as JSON and Markdown, the class histogram before and
after, a grid per class and an overview grid (sources above their variants)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from synthdata.atomic import write_text
from synthdata.data.manifest import read_manifest
from synthdata.reporting.grid import save_grid
from synthdata.reporting.plots import class_balance
from synthdata.sampling.quotas import QuotaPlan

GRID_IMAGES = 16


def tile(path: Path, width: int, height: int) -> torch.Tensor:
    """A PNG as a uint8 C x H x W tensor at ``width`` x ``height`` (RGB or grey, as stored)."""
    from PIL import Image

    with Image.open(path) as image:
        array = np.array(image.resize((width, height)) if image.size != (width, height) else image, dtype=np.uint8)
    return torch.from_numpy(array[:, :, None] if array.ndim == 2 else array).permute(2, 0, 1)


def synthetic_set_report(out: Path, report: Path, plan: QuotaPlan, recipe: str, dataset: Path) -> list[Path]:
    """The plan as JSON and Markdown, the class histogram before and after, a grid per class
    and one overview grid (one row per class; for images made from real ones, each class's row
    of sources above its row of synthetic images), read back from the published images."""
    frame = read_manifest(out).sort_values(["label", "sample_index"])
    real = read_manifest(dataset).set_index("id")
    paths = [write_text(report / "plan.json", json.dumps(plan.rows(), indent=2) + "\n")]
    lines = ["| class | real | wanted | cap | synthetic | total |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {q.name} | {q.real} | {q.wanted} | {q.cap} | {q.synthetic} | {q.total} |" for q in plan.classes]
    paths.append(write_text(report / "plan.md", "\n".join(lines) + "\n"))
    paths.append(
        class_balance(
            [q.name for q in plan.classes],
            [q.real for q in plan.classes],
            [q.synthetic for q in plan.classes],
            report / "class_balance.png",
            title=f"{recipe}: real + synthetic train images",
        )
    )
    overview, names = [], []

    def pad(stack: torch.Tensor) -> torch.Tensor:
        return torch.cat([stack[:8], torch.full((8 - len(stack[:8]), *stack.shape[1:]), 255, dtype=torch.uint8)])

    for name, rows in frame.groupby("label_name", sort=False):
        first = rows.iloc[0]
        width, height = int(first["width"]), int(first["height"])
        stack = torch.stack([tile(out / relpath, width, height) for relpath in rows["relpath"][:GRID_IMAGES]])
        paths.append(save_grid(stack, 2 if len(stack) > 8 else 1, report / "grids" / f"{name}.png", labels=None))
        sources = [str(ids).split(";")[0] for ids in rows["source_ids"][:8]] if "source_ids" in rows else []
        if sources and all(sources):
            overview.append(pad(torch.stack([tile(dataset / real.loc[s, "relpath"], width, height) for s in sources])))
            names.append(f"{name} source")
        overview.append(pad(stack))
        names.append(str(name))
    paths.append(save_grid(torch.cat(overview), len(names), report / "samples.png", labels=names))
    return paths
