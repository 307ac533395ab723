"""Who made an artifact: synthdata's version, the git commit of the working tree, and every
package version needed to repeat the run."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from pathlib import Path

from synthdata import __version__


@lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD's hash, with ``-dirty`` when tracked files differ from it; ``unknown`` outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def created_by() -> dict[str, str]:
    return {"synthdata": __version__, "git_commit": git_commit()}


def hardware() -> str:
    """What a training ran on, as its record states it: the GPU and how many, else the CPU and
    torch's thread count."""
    import torch  # here, not at the top: reading versions and commits needs no torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


PACKAGES = (
    "torch",
    "diffusers",
    "peft",
    "accelerate",
    "safetensors",
    "monai",
    "albumentations",
    "torchmetrics",
    "mlflow",
    "dvc",
    "great-expectations",
    "numpy",
    "scipy",
    "pillow",
)


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Every version needed to repeat a run: Python, platform, synthdata, commit, packages."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "platform": platform.platform(), **created_by()}
    for package in PACKAGES:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out
