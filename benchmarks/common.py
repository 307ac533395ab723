"""Shared helpers for benchmark scripts: where results go, what machine made them."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, str | int]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "torch": torch.__version__,
    }


def write_result(name: str, result: dict, table: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / f"{name}.json"
    partial = target.with_name(f".{target.name}.part")
    partial.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(partial, target)
    (RESULTS / f"{name}.md").write_text(table)
    return target
