"""Pixel-level leak checks: the same pixels under two names are the same image.

A test image copied into the train split (renamed, re-encoded, with other metadata) keeps its
pixels, so images are compared by the sha256 of their uint8 pixels at one size.
"""

from __future__ import annotations

from typing import Any

import torch

from synthdata.errors import DataError
from synthdata.hashing import sha256_bytes


def pixel_hashes(images: torch.Tensor) -> list[str]:
    """sha256 of each image's uint8 pixels at the model's size: equal pixels, equal hash,
    whatever the file's encoding or metadata."""
    return [sha256_bytes(image.contiguous().numpy().tobytes()) for image in images]


def check_disjoint(test: torch.Tensor, **training: torch.Tensor) -> dict[str, Any]:
    """Refuse any training image whose pixels equal a test image's; the record of the check."""
    test_hashes = pixel_hashes(test)
    known = set(test_hashes)
    record: dict[str, Any] = {
        "test_images": len(test_hashes),
        "test_pixels_sha256": sha256_bytes("".join(sorted(test_hashes)).encode()),
    }
    for name, images in training.items():
        shared = sum(h in known for h in pixel_hashes(images))
        if shared:
            raise DataError(
                f"{shared} {name} training image(s) have the same pixels as test images; the test split must stay unseen"
            )
        record[f"{name}_images_checked"] = len(images)
    record["shared"] = 0
    return record
