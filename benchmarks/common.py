"""Shared helpers for benchmark scripts: where results go, what machine made them."""

from __future__ import annotations

import json
import platform
from pathlib import Path

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


def write_result(name: str, result: dict, table: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = write_text(RESULTS / f"{name}.json", json.dumps(result, indent=2) + "\n")
    write_text(RESULTS / f"{name}.md", table)
    return target
