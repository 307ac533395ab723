"""Image grids: one row per class, written as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from synthdata.atomic import commit, partial_name


def image_grid(images: torch.Tensor, rows: int, *, labels: list[str] | None = None, scale: int = 2) -> Image.Image:
    """uint8 ``(N, C, H, W)`` -> one PIL image, ``rows`` rows, optional row labels on the left."""
    count, channels, height, width = images.shape
    columns = int(np.ceil(count / rows))
    pad = 2
    label_width = max(90, 7 * max(len(t) for t in labels) + 8) if labels else 0
    canvas = Image.new(
        "RGB", (label_width + columns * (width * scale + pad) + pad, rows * (height * scale + pad) + pad), "white"
    )
    draw = ImageDraw.Draw(canvas)
    for index in range(count):
        row, column = divmod(index, columns)
        array = images[index].permute(1, 2, 0).numpy()
        tile = Image.fromarray(array[:, :, 0] if channels == 1 else array).convert("RGB")
        tile = tile.resize((width * scale, height * scale), Image.Resampling.NEAREST)
        canvas.paste(tile, (label_width + pad + column * (width * scale + pad), pad + row * (height * scale + pad)))
    for row, text in enumerate(labels or []):
        draw.text((4, pad + row * (height * scale + pad) + height * scale // 2 - 5), text, fill="black")
    return canvas


def save_grid(images: torch.Tensor, rows: int, path: Path, *, labels: list[str] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_name(path)
    image_grid(images, rows, labels=labels).save(partial, format="PNG")
    commit(partial, path)
    return path
