"""A sampling job: which images to make, each one's id and seed, and who makes which batch.

Every image is the ``index``-th of its class in a sampling run. The run id is a hash of what
determines the images (adapter, base, source manifest, sampler settings and seed) and *not* of
the counts, so raising a quota later adds new images and keeps the old ones. An image's id and
seed are both drawn from ``sha256(run id / class / index)``: a rerun makes the same images, a
resumed run knows which ones are already there, and shards of a job never overlap.

Items are ordered by class then index and cut into fixed batches; process ``r`` of ``w`` makes
batches ``r, r + w, r + 2w, ...``. A batch is always generated whole, with one generator per
image, so an image's bytes do not depend on how many processes ran or where a run was resumed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from synthdata.sampling.quotas import QuotaPlan


def sample_run_id(identity: dict[str, Any]) -> str:
    """16 hex digits identifying a sampling run by its inputs (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Item:
    label: int
    name: str
    index: int
    id: str
    seed: int
    mode: str = "noise"
    """How the image is made: ``noise``, ``img2img`` or ``interpolate`` (``synthdata.sampling.anchors``)."""
    sources: tuple[str, ...] = ()
    """Ids of the real train image(s) it starts from (none for ``noise``)."""
    strength: float = 1.0
    """How far the source is noised (1: pure noise)."""
    weight: float = 0.0
    """Interpolation weight of the second source (0 with fewer than two)."""

    @property
    def relpath(self) -> str:
        """Where the image lives in the output folder (the ImageFolder layout)."""
        return f"{self.name}/{self.id}.png"


def make_item(run_id: str, label: int, name: str, index: int) -> Item:
    digest = hashlib.sha256(f"{run_id}/{name}/{index}".encode()).hexdigest()
    # 60 bits: a valid torch seed and a non-negative int64 in the manifest.
    return Item(label, name, index, digest[:16], int(digest[16:31], 16))


def plan_items(plan: QuotaPlan, classes: list[str], run_id: str) -> list[Item]:
    """Every image of the plan, ordered by class (label order) then index."""
    counts = plan.counts()
    return [
        make_item(run_id, label, name, i) for label, name in enumerate(classes) for i in range(counts.get(name, 0))
    ]


def more_items(classes: list[str], run_id: str, counts: dict[str, int], start: dict[str, int]) -> list[Item]:
    """``counts[name]`` further images of each class, from index ``start[name]`` on (replacements
    for dropped images: new indices, hence new ids and seeds, in the same run)."""
    return [
        make_item(run_id, label, name, start.get(name, 0) + i)
        for label, name in enumerate(classes)
        for i in range(counts.get(name, 0))
    ]


def batches(items: list[Item], batch_size: int) -> list[list[Item]]:
    return [items[start : start + batch_size] for start in range(0, len(items), batch_size)]


def shard(all_batches: list[list[Item]], rank: int, world: int) -> list[list[Item]]:
    """The batches process ``rank`` of ``world`` makes: disjoint, and together all of them."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside a world of {world}")
    return all_batches[rank::world]
