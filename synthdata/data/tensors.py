"""A dataset split as in-memory tensors at the model's resolution and channel count.

Domain sets at 32 px fit in memory many times over (60k CIFAR images are 184 MB as uint8), and
indexing a tensor is far faster on CPU than decoding PNGs every epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from synthdata.data.card import read_card
from synthdata.data.images import resize
from synthdata.data.manifest import read_manifest
from synthdata.errors import DataError
from synthdata.progress import progress_bar


def to_model_space(array: np.ndarray, size: int, channels: int) -> np.ndarray:
    """``(H, W, C)`` uint8 -> ``(channels, size, size)`` uint8; grey is repeated to RGB and
    RGB averaged to grey when the model's channel count asks for it."""
    array = resize(array, size)
    if array.shape[2] == 1 and channels == 3:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 3 and channels == 1:
        array = np.rint(array.mean(axis=2, keepdims=True)).astype(np.uint8)
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def load_split(
    folder: Path | str, split: str, *, size: int, channels: int
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Images (uint8, N x C x size x size), labels (int64) and class names of one split."""
    folder = Path(folder)
    frame, card = read_manifest(folder), read_card(folder)
    rows = frame[frame["split"] == split].sort_values("id")
    if rows.empty:
        raise DataError(f"{folder}: no '{split}' images")
    images = load_files(
        folder, list(rows["relpath"]), size=size, channels=channels, description=f"load {folder.name}/{split}"
    )
    return images, torch.tensor(rows["label"].to_numpy(), dtype=torch.int64), list(card.classes)


def load_files(
    folder: Path | str, relpaths: list[str], *, size: int, channels: int, description: str | None = None
) -> torch.Tensor:
    """Images (uint8, N x channels x size x size) of ``relpaths`` inside ``folder``; a path that
    leaves the folder is refused."""
    root = Path(folder).resolve()
    images = np.empty((len(relpaths), channels, size, size), dtype=np.uint8)
    with progress_bar(description or f"load {root.name}", total=len(relpaths)) as bar:
        for index, relpath in enumerate(relpaths):
            path = (root / relpath).resolve()
            if not path.is_relative_to(root):
                raise DataError(f"{root}: manifest path {relpath!r} leaves the dataset folder")
            with Image.open(path) as image:
                array = np.asarray(image, dtype=np.uint8)
            images[index] = to_model_space(array[:, :, None] if array.ndim == 2 else array, size, channels)
            bar.advance()
    return torch.from_numpy(images)


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range the denoiser is trained in."""
    return images.float().div(127.5).sub(1.0)


def to_uint8(samples: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounding to nearest."""
    return samples.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
