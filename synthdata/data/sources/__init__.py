"""Registered data sources and the factory that turns a recipe's data section into one."""

from __future__ import annotations

from synthdata.data.sources.base import RawSample, Source, SourceInfo
from synthdata.data.sources.cifar10 import CIFAR10
from synthdata.data.sources.eurosat import EuroSAT
from synthdata.data.sources.gtsrb import GTSRB
from synthdata.data.sources.medmnist import BREASTMNIST, PNEUMONIAMNIST
from synthdata.data.sources.pbc import PBC
from synthdata.data.sources.table import TableColumns, TableSource
from synthdata.data.sources.user import UserSource
from synthdata.errors import DataError
from synthdata.paths import shown

BUILTIN: dict[str, Source] = {
    "pbc": PBC(),
    "pneumoniamnist": PNEUMONIAMNIST,
    "breastmnist": BREASTMNIST,
    "eurosat": EuroSAT(),
    "gtsrb": GTSRB(),
    "cifar10": CIFAR10(),
}
USER_FORMATS = ("imagefolder", "npz", "csv")


def builtin_source(name: str) -> Source:
    """The built-in source ``name``; anything else (a user format, a path, a misspelling) is a
    :class:`DataError` that lists the built-in sources and says how user data is given."""
    if name in BUILTIN:
        return BUILTIN[name]
    spelled = shown(name)
    if name in USER_FORMATS:
        raise DataError(
            f"'{spelled}' is a user format, not a built-in source: data.path is required, so give --recipe "
            f"with data.source: {spelled} and data.path (built-in sources: {', '.join(BUILTIN)})"
        )
    if name.lower() in BUILTIN:
        hint = f"did you mean '{name.lower()}'?"
    else:
        hint = f"user data ({', '.join(USER_FORMATS)}) needs --recipe with data.source and data.path"
    raise DataError(f"'{spelled}' is not a built-in source ({', '.join(BUILTIN)}); {hint}")


def get_source(
    name: str,
    *,
    path: str | None = None,
    dataset: str | None = None,
    classes: list[str] | None = None,
    channels: int | None = None,
    licence: str | None = None,
    labels: str | None = None,
    columns: TableColumns | None = None,
) -> Source:
    """A user source for ``imagefolder``/``npz``/``csv`` with a path, else :func:`builtin_source`.

    ``csv`` takes its labels from the table ``labels`` (CSV, TSV or parquet) and reads its
    ``columns``."""
    if name == "csv" and path and labels:
        return TableSource(
            path,
            labels,
            columns or TableColumns(),
            name=dataset or name,
            classes=classes,
            channels=channels,
            licence=licence,
        )
    if name in USER_FORMATS and path and name != "csv":
        return UserSource(name, path, name=dataset or name, classes=classes, channels=channels, licence=licence)
    return builtin_source(name)


__all__ = [
    "BUILTIN",
    "RawSample",
    "Source",
    "SourceInfo",
    "TableColumns",
    "USER_FORMATS",
    "builtin_source",
    "get_source",
]
