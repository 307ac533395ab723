"""Shared helpers for benchmark scripts: where results go, what machine made them."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch

from synthdata.atomic import write_text

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, str | int]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "torch": torch.__version__,
    }


def real_pools(dataset: Path, size: int) -> tuple[Any, Any, Any, Any]:
    """The verified dataset's card and its train, val and test splits as utility pools at ``size``."""
    from synthdata.data.manifest import verify_dataset

    verified = verify_dataset(dataset)
    card = verified.card
    train, val, test = (
        split_pool(dataset, split, size, card.channels, verified.manifest_sha256) for split in ("train", "val", "test")
    )
    return card, train, val, test


def split_pool(folder: Path, split: str, size: int, channels: int, digest: str) -> Any:
    """One split of ``folder`` as a utility pool (images at ``size``, labels, manifest hash)."""
    from synthdata.data.tensors import load_split
    from synthdata.downstream.runner import Pool

    images, labels, _ = load_split(folder, split, size=size, channels=channels)
    return Pool(images, labels, digest)


def write_result(name: str, result: dict, table: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = write_text(RESULTS / f"{name}.json", json.dumps(result, indent=2) + "\n")
    write_text(RESULTS / f"{name}.md", table)
    return target
