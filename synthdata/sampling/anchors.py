"""Real anchors: which train image(s) a derived image starts from, and how far it is noised.

In ``img2img`` mode an image starts from one real *train* image of its class, noised to its
``strength`` (SDEdit); in ``interpolate`` mode from two, DDIM-inverted and spherically mixed
with a drawn weight. Sources are spread evenly over the class: the class's train ids are put
in a seeded order (``sha256(run id / class)``) and the image of index ``i`` starts from the
``i mod n``-th, so each real image anchors ``floor`` or ``ceil`` of ``quota / n`` images and
replacements (later indices) carry on the cycle. The partner of an interpolation moves one
place further each cycle, so the same pair recurs only after ``n - 1`` cycles.

Strength and weight, when given as ``[low, high]``, are drawn per image from a generator
seeded by the image's own seed: an image's anchor depends on its id only, never on the batch,
the shard or where a run resumed.

Sources are read from the dataset's train split only; one whose pixels equal a val or test
image's (the same image filed twice) is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from synthdata.data.leaks import pixel_hashes
from synthdata.data.manifest import GenerationMode, read_manifest
from synthdata.data.tensors import load_files
from synthdata.errors import DataError
from synthdata.sampling.jobs import Item
from synthdata.sampling.model import SamplingModel
from synthdata.sampling.settings import SampleSettings

_STREAM = 0x5EED_A7C4  # the draws of an anchor, apart from anything else seeded by the image's seed


def draw(value: float | list[float], rng: np.random.Generator) -> float:
    """A fixed value, or one drawn uniformly from ``[low, high]``."""
    if isinstance(value, (int, float)):
        return float(value)
    low, high = (float(v) for v in value)
    return low if low == high else float(low + (high - low) * rng.random())


def source_order(run_id: str, name: str, ids: list[str]) -> list[str]:
    """The class's train ids in the run's seeded order (sorted first: the manifest's row order
    never matters)."""
    ordered = sorted(ids)
    seed = int(hashlib.sha256(f"{run_id}/{name}/sources".encode()).hexdigest()[:16], 16)
    return [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]


def anchor(
    item: Item, order: list[str], mode: GenerationMode, strength: float | list[float], weight: float | list[float]
) -> Item:
    """``item`` with its sources, strength and interpolation weight (unchanged in ``noise`` mode)."""
    if mode == "noise":
        return item
    if not order:
        raise DataError(f"class '{item.name}' has no train image to start {mode} generation from")
    n = len(order)
    first = order[item.index % n]
    rng = np.random.default_rng([item.seed, _STREAM])
    drawn = draw(strength, rng)
    if mode == "interpolate" and n > 1:
        partner = order[(item.index % n + 1 + (item.index // n) % (n - 1)) % n]
        return replace(item, mode=mode, sources=(first, partner), strength=drawn, weight=draw(weight, rng))
    return replace(item, mode=mode, sources=(first,), strength=drawn, weight=0.0)


@dataclass
class SourcePool:
    """The train images derived images may start from: ids per class, their files, and the
    pixel hashes of the dataset's val and test images (never a source)."""

    folder: Path
    ids: dict[str, list[str]]
    relpaths: dict[str, str]
    held_out: set[str]
    size: int
    channels: int

    def orders(self, run_id: str) -> dict[str, list[str]]:
        return {name: source_order(run_id, name, ids) for name, ids in self.ids.items()}

    def load(self, ids: list[str]) -> dict[str, torch.Tensor]:
        """uint8 pixels (C x size x size) of each source; a source with the pixels of a val or
        test image is refused."""
        wanted = sorted(set(ids))
        unknown = [i for i in wanted if i not in self.relpaths]
        if unknown:
            raise DataError(f"{self.folder}: source image {unknown[0]!r} is not in the train split")
        images = load_files(
            self.folder,
            [self.relpaths[i] for i in wanted],
            size=self.size,
            channels=self.channels,
            description=f"sources {self.folder.name}",
        )
        for source, digest in zip(wanted, pixel_hashes(images), strict=True):
            if digest in self.held_out:
                raise DataError(
                    f"{self.folder}: train image {source!r} has the pixels of a val or test image; it is never a source"
                )
        return dict(zip(wanted, images, strict=True))


def source_pool(folder: Path, frame: pd.DataFrame, classes: list[str], *, size: int, channels: int) -> SourcePool:
    """The pool of ``frame`` (a verified manifest of ``folder``), images at the generator's size."""
    train = frame[frame["split"] == "train"]
    ids = {name: sorted(train.loc[train["label_name"] == name, "id"].astype(str)) for name in classes}
    relpaths = dict(zip(train["id"].astype(str), train["relpath"].astype(str), strict=True))
    held = frame[frame["split"] != "train"]
    held_images = (
        load_files(
            folder,
            list(held["relpath"].astype(str)),
            size=size,
            channels=channels,
            description=f"held-out pixels {Path(folder).name}",
        )
        if len(held)
        else torch.empty(0)
    )
    return SourcePool(
        Path(folder), ids, relpaths, set(pixel_hashes(held_images)) if len(held) else set(), size, channels
    )


def anchor_pool(mode: str, model: SamplingModel, dataset: Path, classes: list[str]) -> SourcePool | None:
    """The dataset's train images as sources (None in noise mode), at the generator's pixel size."""
    if mode == "noise":
        return None
    channels, size, _ = model.pixels
    return source_pool(dataset, read_manifest(dataset), classes, size=size, channels=channels)


def anchored(items: list[Item], settings: SampleSettings, pool: SourcePool | None, run_id: str) -> list[Item]:
    """``items`` with their real anchors (unchanged in noise mode)."""
    if pool is None:
        return items
    orders = pool.orders(run_id)
    return [anchor(item, orders[item.name], settings.mode, settings.strength, settings.weight) for item in items]
