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
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def created_by() -> dict[str, str]:
    return {"synthdata": __version__, "git_commit": git_commit()}


PACKAGES = ("torch", "diffusers", "peft", "accelerate", "safetensors", "monai", "albumentations", "torchmetrics",
            "mlflow", "dvc", "great-expectations", "numpy", "scipy", "pillow")  # fmt: skip


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
