"""Provenance check of a synthetic set: can every image be traced to the models that made it?

- the Great Expectations suite for synthetic manifests passes (complete provenance columns);
- every file exists inside the folder and its sha256 matches its row;
- every row's adapter sha256 is the sha256 of the adapter given (weights file and record agree);
- every row's base sha256 is the sha256 of the base that adapter belongs to (none for scratch);
- every row's source manifest hash is the fine-tuning dataset's.

A failure raises one :class:`DataError` line naming the check and the first rows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from synthdata.data.card import read_card
from synthdata.data.expectations import validate_dataset
from synthdata.data.manifest import SYNTHETIC_SOURCE, read_manifest
from synthdata.errors import DataError
from synthdata.hashing import file_sha256
from synthdata.models.adapter import read_adapter_record
from synthdata.models.base import DEFAULT_BASE, UNET_WEIGHTS

_SHOWN = 3


def _rows(frame: pd.DataFrame, mask: pd.Series) -> str:
    ids = list(frame.loc[mask, "id"])
    more = f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else ""
    return ", ".join(ids[:_SHOWN]) + more


def base_sha256(base: Path | str | None) -> str:
    """sha256 of a base's UNet weights (the identity adapters are bound to)."""
    path = (Path(base) if base is not None else DEFAULT_BASE) / UNET_WEIGHTS  # pixel and Stable Diffusion bases alike
    if not path.is_file():
        raise DataError(f"{path}: base weights not found")
    return file_sha256(path)


def check_provenance(
    folder: Path, adapter: Path, base: Path | str | None, source_manifest_sha256: str
) -> pd.DataFrame:
    """Run every check on the synthetic set in ``folder``; returns its manifest."""
    folder, adapter = Path(folder), Path(adapter)
    frame, card = read_manifest(folder), read_card(folder)
    if card.source != SYNTHETIC_SOURCE:
        raise DataError(f"{folder}: not a synthetic set (card source '{card.source}')")
    validate_dataset(folder, frame, card)
    record = read_adapter_record(adapter)  # weights and record checked against each other
    actual = record["sha256"]
    wrong = frame["adapter_sha256"] != actual
    if wrong.any():
        raise DataError(
            f"{folder}: rows {_rows(frame, wrong)} name adapter {frame.loc[wrong, 'adapter_sha256'].iloc[0][:16]}…, not {adapter} ({actual[:16]}…)"
        )
    expected_base = "" if record["mode"] == "scratch" else base_sha256(base)
    if record["mode"] != "scratch" and record["base_sha256"] != expected_base:
        raise DataError(
            f"{adapter}: belongs to base {record['base_sha256'][:16]}…, not to {base or DEFAULT_BASE} ({expected_base[:16]}…)"
        )
    wrong = frame["base_sha256"] != expected_base
    if wrong.any():
        raise DataError(f"{folder}: rows {_rows(frame, wrong)} name a base whose sha256 is not the adapter's base")
    wrong = frame["source_manifest_sha256"] != source_manifest_sha256
    if wrong.any():
        raise DataError(
            f"{folder}: rows {_rows(frame, wrong)} were made from another dataset (source manifest differs)"
        )
    return frame
