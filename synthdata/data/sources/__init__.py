"""Registered data sources and the factory that turns a recipe's data section into one."""

from __future__ import annotations

from synthdata.data.sources.base import RawSample, Source, SourceInfo
from synthdata.data.sources.cifar10 import CIFAR10
from synthdata.data.sources.eurosat import EuroSAT
from synthdata.data.sources.gtsrb import GTSRB
from synthdata.data.sources.medmnist import BREASTMNIST, PNEUMONIAMNIST
from synthdata.data.sources.pbc import PBC
from synthdata.data.sources.user import UserSource
from synthdata.errors import DataError

BUILTIN: dict[str, Source] = {
    "pbc": PBC(),
    "pneumoniamnist": PNEUMONIAMNIST,
    "breastmnist": BREASTMNIST,
    "eurosat": EuroSAT(),
    "gtsrb": GTSRB(),
    "cifar10": CIFAR10(),
}
USER_FORMATS = ("imagefolder", "npz")


def get_source(
    name: str,
    *,
    path: str | None = None,
    dataset: str | None = None,
    classes: list[str] | None = None,
    channels: int | None = None,
    licence: str | None = None,
) -> Source:
    """A built-in source by name, or a user source for ``imagefolder``/``npz`` with a path."""
    if name in BUILTIN:
        return BUILTIN[name]
    if name in USER_FORMATS:
        if not path:
            raise DataError(f"source '{name}' needs a path to the user's data")
        return UserSource(
            name, path, name=dataset or name, classes=classes, channels=channels, licence=licence
        )
    known = ", ".join([*BUILTIN, *USER_FORMATS])
    raise DataError(f"unknown source '{name}' (known: {known})")


__all__ = ["BUILTIN", "RawSample", "Source", "SourceInfo", "USER_FORMATS", "get_source"]
