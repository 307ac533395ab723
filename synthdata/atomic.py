"""Writes that land whole or not at all: a temporary name, then one rename.

Folders are built under ``.staging-<name>`` beside their target (same filesystem, so the final
rename is atomic) and swapped in; files are written as ``.<name>.part`` and renamed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def fresh_staging(target: Path) -> Path:
    """An empty staging folder for ``target`` (a leftover from a killed run is removed)."""
    staging = target.with_name(f".staging-{target.name}")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def publish_folder(staging: Path, target: Path) -> Path:
    """Swap ``staging`` in as ``target``; an existing ``target`` is replaced, never merged."""
    old = target.with_name(f".old-{target.name}")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    if old.exists():
        shutil.rmtree(old)
    return target


def write_text(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path
