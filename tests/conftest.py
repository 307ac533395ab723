"""Shared fixtures: offline environment, an isolated MLflow store, tiny seeded image trees."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.update(
    HF_HUB_OFFLINE="1", NO_ALBUMENTATIONS_UPDATE="1", DVC_NO_ANALYTICS="1", GX_ANALYTICS_ENABLED="false"
)

SIZE = 8
# Tests train models of a few thousand parameters: one thread beats two (no OpenMP hand-offs).
torch.set_num_threads(1)
REPO = Path(__file__).resolve().parent.parent


def _mirror() -> Path | None:
    """The real data mirror: $SYNTHDATA_DATA_MIRROR, else ../shared/data beside the checkout."""
    value = os.environ.get("SYNTHDATA_DATA_MIRROR")
    path = Path(value) if value else REPO.parent / "shared" / "data"
    return path if (path / "SHA256SUMS").is_file() else None


MIRROR = _mirror()


@pytest.fixture(autouse=True)
def _isolated_stores(tmp_path_factory, monkeypatch):
    """Every test gets its own MLflow store and download cache, and no data mirror."""
    root = tmp_path_factory.mktemp("stores")
    monkeypatch.setenv("SYNTHDATA_MLRUNS", str(root / "mlruns"))
    monkeypatch.setenv("SYNTHDATA_CACHE", str(root / "cache"))
    monkeypatch.delenv("SYNTHDATA_DATA_MIRROR", raising=False)


def png_bytes(seed: int, size: int = SIZE, mode: str = "RGB") -> bytes:
    """A distinct random image (distinct seeds give distinct pixels, hence distinct sha256)."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    array = rng.integers(0, 256, size=(size, size, channels), dtype=np.uint8)
    image = Image.fromarray(array[:, :, 0] if channels == 1 else array, mode=mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_image_tree(root: Path, counts: dict[str, int], *, splits: tuple[str, ...] | None = None, seed: int = 0) -> Path:
    """``root/[split/]class/NNN.png`` with ``counts[class]`` images per class (and split)."""
    offset = seed * 100_000
    for split in splits or (None,):
        for name, count in sorted(counts.items()):
            folder = root / split / name if split else root / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                offset += 1
                (folder / f"{i:03d}.png").write_bytes(png_bytes(offset))
    return root


def zip_tree(folder: Path, target: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    return target


@pytest.fixture
def image_tree(tmp_path) -> Path:
    """Three classes (a: 30, b: 20, c: 12 images), no split folders."""
    return make_image_tree(tmp_path / "tree", {"a": 30, "b": 20, "c": 12})
