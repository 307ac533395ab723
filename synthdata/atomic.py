"""Writes that land whole or not at all: a temporary name, then one rename.

Folders are built under ``.staging-<name>`` beside their target (same filesystem, so the final
rename is atomic) and swapped in; files are written as ``.<name>.part`` and renamed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from synthdata import faults


def fresh_staging(target: Path) -> Path:
    """An empty staging folder for ``target`` (a leftover from a killed run is removed)."""
    restore_interrupted(target)
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
        faults.point()  # the worst moment: the old folder moved aside, the new one not yet in place
    commit(staging, target)
    if old.exists():
        shutil.rmtree(old)
    return target


def restore_interrupted(target: Path) -> None:
    """Put back a folder a kill left moved aside by :func:`publish_folder` (no new one in place)."""
    old = target.with_name(f".old-{target.name}")
    if old.exists() and not target.exists():
        os.replace(old, target)


def commit(partial: Path, path: Path) -> Path:
    """Rename a finished temporary file or folder onto its final name (one atomic step)."""
    faults.point()
    os.replace(partial, path)
    return path


def partial_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


def write_bytes(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_name(path)
    partial.write_bytes(data)
    return commit(partial, path)


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def build_folder(target: Path, build: Callable[[Path], list[Path]]) -> list[Path]:
    """Build a whole folder (a report) with ``build(staging)`` and swap it in as ``target``; the
    paths ``build`` wrote, now under ``target``. A kill leaves the previous folder or none. That
    ``target`` holds no input and not the working folder is checked before any work, by the
    command (:func:`synthdata.paths.guard_outputs`)."""
    target = Path(target)
    staging = fresh_staging(target)
    paths = build(staging)
    publish_folder(staging, target)
    return [target / Path(p).relative_to(staging) for p in paths]
