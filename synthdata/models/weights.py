"""Weights are only ever read from safetensors; pickle-based formats are refused by name.

A pickle file (``.bin``, ``.ckpt``, ``.pt``, ``.pth``, ``.pkl``) can run arbitrary code when
loaded, so synthdata never loads one, even with ``weights_only``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from synthdata.atomic import commit, partial_name
from synthdata.errors import DataError

PICKLE_SUFFIXES = {".bin", ".ckpt", ".pt", ".pth", ".pkl", ".pickle"}


class WeightsError(DataError):
    """Weights are missing, unsafe (pickle), damaged, edited, or belong to another base."""


def refuse_pickle(folder_or_file: Path) -> None:
    """Raise :class:`WeightsError` if ``folder_or_file`` is, or a folder holds, pickle weights
    and no safetensors file beside them."""
    path = Path(folder_or_file)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    pickles = [p for p in files if p.suffix.lower() in PICKLE_SUFFIXES]
    if pickles:
        raise WeightsError(f"{pickles[0]}: refusing pickle weights ({pickles[0].suffix}); convert them to safetensors")


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Load a ``.safetensors`` file; anything else is refused with one clear line."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise WeightsError(f"{path}: refusing pickle weights ({path.suffix}); convert them to safetensors")
    if path.suffix != ".safetensors":
        raise WeightsError(f"{path}: weights must be a .safetensors file")
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: damaged safetensors file ({exc})") from None


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata of a ``.safetensors`` file's header (empty when it has none)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: damaged safetensors file ({exc})") from None


def write_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> Path:
    """Atomic safetensors write (temp name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_name(path)
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(partial), metadata=metadata)
    commit(partial, path)
    return path
