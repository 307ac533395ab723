"""The C2PA claim of a synthetic image, built from its manifest row.

What it says: the image was created (``c2pa.created``) by a trained model, from noise
(IPTC ``trainedAlgorithmicMedia``) or from real image(s) (``compositeWithTrainedAlgorithmicMedia``);
the real sources are ingredients named by id and identified by sha256 only (no bytes, no
thumbnail: a real image never travels inside a synthetic one); and how it was made, in the
``org.synthdata.generation`` assertion; once a person reviewed the set, their decision on the
image, in the ``org.synthdata.review`` assertion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synthdata.data.manifest import DERIVED_SOURCE_TYPE, DIGITAL_SOURCE_TYPE
from synthdata.errors import DataError

GENERATION_LABEL = "org.synthdata.generation"
REVIEW_LABEL = "org.synthdata.review"
ACTION_LABELS = ("c2pa.actions.v2", "c2pa.actions")  # a v2 claim stores c2pa.actions as .v2
SOURCE_TYPES = (DIGITAL_SOURCE_TYPE, DERIVED_SOURCE_TYPE)
HASH_PREFIX = "sha256:"

# Row column -> the type its value has in the assertion (pandas gives numpy scalars).
GENERATION_FIELDS: dict[str, type] = {
    "id": str,
    "base_sha256": str,
    "adapter_sha256": str,
    "seed": int,
    "scheduler": str,
    "steps": int,
    "guidance": float,
    "strength": float,
    "mode": str,
    "sample_run_id": str,
}


def source_ids(row: Mapping[str, Any]) -> list[str]:
    """The real source image ids of a row (``source_ids`` joined by ";"; none in noise mode)."""
    joined = row.get("source_ids")
    return [s for s in str(joined).split(";") if s] if isinstance(joined, str) else []


def generation(row: Mapping[str, Any]) -> dict[str, Any]:
    """The ``org.synthdata.generation`` assertion's data for a manifest row."""
    missing = [name for name in GENERATION_FIELDS if name not in row]
    if missing:
        raise DataError(f"row {row.get('id', '?')}: no {missing[0]} column (not a synthetic set row)")
    return {name: kind(row[name]) for name, kind in GENERATION_FIELDS.items()}


def review_of(row: Mapping[str, Any]) -> dict[str, str] | None:
    """The ``org.synthdata.review`` assertion's data for a row of a reviewed set (None otherwise)."""
    decision = row.get("review_decision")
    if not isinstance(decision, str) or not decision:
        return None
    return {"decision": decision, "reviewer": str(row["reviewer"]), "reviewed_at": str(row["reviewed_at"])}


def ingredient(source_id: str, sha256: str) -> dict[str, str]:
    """A real source image as a C2PA ingredient, by hash only. C2PA ingredients have no field for
    the asset's own hash without embedding data, so the hash is the ingredient's instance id."""
    return {"title": source_id, "relationship": "inputTo", "instance_id": HASH_PREFIX + sha256}


def claim_for_row(row: Mapping[str, Any], source_hashes: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The C2PA manifest definition of the image a manifest row describes. ``source_hashes``
    maps each real source id of the row to its file's sha256 (from the source dataset's
    manifest); a source without one is a :class:`DataError`."""
    source_type = str(row.get("digital_source_type", ""))
    if source_type not in SOURCE_TYPES:
        raise DataError(f"row {row.get('id', '?')}: digital_source_type {source_type!r} is not one of {SOURCE_TYPES}")
    hashes = source_hashes or {}
    sources = source_ids(row)
    unknown = [s for s in sources if s not in hashes]
    if unknown:
        raise DataError(f"row {row.get('id', '?')}: no sha256 for source image {unknown[0]}")
    assertions: list[dict[str, Any]] = [
        {"label": "c2pa.actions", "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": source_type}]}},
        {"label": GENERATION_LABEL, "data": generation(row)},
    ]
    review = review_of(row)
    if review is not None:
        assertions.append({"label": REVIEW_LABEL, "data": review})
    return {
        "claim_generator_info": [{"name": "synthdata", "version": str(row.get("synthdata_version", ""))}],
        "title": str(row.get("relpath", row.get("id", ""))).rsplit("/", 1)[-1],
        "format": "image/png",
        "ingredients": [ingredient(s, hashes[s]) for s in sources],
        "assertions": assertions,
    }
