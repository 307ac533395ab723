"""The decisions a reviewer exports from the review page, read as untrusted input.

    {"format": "synthdata-review/1", "set": <name>, "set_manifest_sha256": <the set's rows' hash>,
     "reviewer": <name>, "exported_at": <ISO time>,
     "decisions": [{"id": <image id>, "decision": "accept" | "reject" | "skip", "at": <ISO time>}, ...]}

Decisions are bound to one set by its manifest hash: a file made for another set (or for an
earlier version of this one) is refused, as is any id the set does not hold.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthdata.errors import DataError
from synthdata.hashing import sha256_bytes

FORMAT = "synthdata-review/1"
DECISIONS = ("accept", "reject", "skip")
MAX_BYTES = 64 * 1024 * 1024
MAX_NAME = 200


@dataclass(frozen=True)
class Decision:
    decision: str
    at: str
    """When it was made (ISO 8601, UTC)."""


@dataclass(frozen=True)
class Decisions:
    """A reviewer's decisions on one set, as exported from the review page."""

    path: Path
    sha256: str
    set_name: str
    set_manifest_sha256: str
    reviewer: str
    exported_at: str
    decisions: dict[str, Decision]

    def count(self, decision: str) -> int:
        return sum(d.decision == decision for d in self.decisions.values())


def _text(path: Path, data: dict[str, Any], key: str, *, limit: int = MAX_NAME) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{path}: '{key}' must be a non-empty string")
    if len(value) > limit or any(unicodedata.category(c).startswith("C") for c in value):
        raise DataError(f"{path}: '{key}' is longer than {limit} characters or holds control characters")
    return value.strip()


def _time(path: Path, value: Any, where: str) -> str:
    """An ISO 8601 time, normalised to UTC (``...Z``)."""
    if not isinstance(value, str):
        raise DataError(f"{path}: {where} must be an ISO 8601 time")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(f"{path}: {where} {value[:40]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise DataError(f"{path}: {where} {value[:40]!r} has no time zone")
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _decisions(path: Path, entries: Any, ids: set[str]) -> dict[str, Decision]:
    if not isinstance(entries, list):
        raise DataError(f"{path}: 'decisions' must be a list")
    found: dict[str, Decision] = {}
    for number, entry in enumerate(entries):
        where = f"decisions[{number}]"
        if not isinstance(entry, dict) or set(entry) != {"id", "decision", "at"}:
            raise DataError(f"{path}: {where} must hold exactly id, decision and at")
        image, decision = entry["id"], entry["decision"]
        if not isinstance(image, str) or image not in ids:
            raise DataError(f"{path}: {where}: image {str(image)[:40]!r} is not in the set")
        if image in found:
            raise DataError(f"{path}: {where}: image {image!r} is decided twice")
        if decision not in DECISIONS:
            raise DataError(f"{path}: {where}: decision {str(decision)[:20]!r} is not one of {', '.join(DECISIONS)}")
        found[image] = Decision(decision, _time(path, entry["at"], f"{where}.at"))
    return found


def read_decisions(path: Path, set_name: str, set_manifest_sha256: str, ids: set[str]) -> Decisions:
    """Read and check ``path`` against the set it must be for (name, rows' hash, image ids)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such decisions file")
    if path.stat().st_size > MAX_BYTES:
        raise DataError(f"{path}: larger than {MAX_BYTES // 2**20} MiB; not a decisions file")
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataError(f"{path}: not a review decisions file (format {FORMAT!r} expected)")
    made_for, made_for_sha = data.get("set"), data.get("set_manifest_sha256")
    if made_for_sha != set_manifest_sha256 or made_for != set_name:
        raise DataError(
            f"{path}: decisions made for set {str(made_for)[:60]!r} (manifest {str(made_for_sha)[:16]}...), "
            f"not for {set_name!r} (manifest {set_manifest_sha256[:16]}...); review this set and export again"
        )
    return Decisions(
        path=path,
        sha256=sha256_bytes(raw),
        set_name=set_name,
        set_manifest_sha256=set_manifest_sha256,
        reviewer=_text(path, data, "reviewer"),
        exported_at=_time(path, data.get("exported_at"), "exported_at"),
        decisions=_decisions(path, data.get("decisions"), ids),
    )
