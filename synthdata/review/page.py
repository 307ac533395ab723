"""The review page of a synthetic set: one HTML file, no server, every image inside it.

Each synthetic image is shown large beside the real train image(s) it was made from (none in
``noise`` mode) and a strip of real train images of its class; the reviewer accepts, rejects or
skips it with one key, sees their progress, and exports the decisions as JSON with their name.
Only *train* images of the real dataset appear: held-out images never inform a decision.
Decisions are kept in the browser's storage for this set, so closing the page loses nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd

from synthdata.atomic import write_text
from synthdata.credentials.claim import source_ids
from synthdata.data.card import named_dataset, read_card
from synthdata.data.images import decode_image, encode_png
from synthdata.data.manifest import verify_dataset
from synthdata.errors import DataError
from synthdata.progress import progress_bar
from synthdata.review.decisions import FORMAT

DATA_MARK = "/*REVIEW-DATA*/"


@dataclass(frozen=True)
class ReviewPage:
    path: Path
    images: int
    classes: int
    real: int
    """Real train images on the page (class strips and sources)."""


def _data_uri(data: bytes, label: str) -> str:
    """The image's pixels as a PNG data URI, re-encoded: no text chunk or credential goes into the page."""
    return "data:image/png;base64," + base64.b64encode(encode_png(decode_image(data, label))).decode()


def _strip(frame: pd.DataFrame, name: str, count: int) -> list[str]:
    """``count`` real train ids of class ``name``, a fixed spread (by the hash of the id)."""
    ids = frame.loc[(frame["split"] == "train") & (frame["label_name"] == name), "id"].astype(str)
    return sorted(ids, key=lambda i: hashlib.sha256(i.encode()).hexdigest())[:count]


def _payload(set_folder: Path, dataset: Path, real_per_class: int) -> tuple[dict[str, Any], int]:
    synthetic = verify_dataset(set_folder)
    real = verify_dataset(dataset)
    train = real.frame[real.frame["split"] == "train"].set_index("id")
    images: list[dict[str, Any]] = []
    real_ids: set[str] = set()
    strips = {name: _strip(real.frame, name, real_per_class) for name in synthetic.card.classes}
    with progress_bar(f"review page {set_folder.name}", total=len(synthetic.frame)) as bar:
        for row in synthetic.frame.to_dict("records"):
            sources = source_ids(row)
            outside = [s for s in sources if s not in train.index]
            if outside:
                raise DataError(
                    f"{set_folder}: image {row['id']} names source {outside[0]!r}, not a train image of {dataset}"
                )
            real_ids.update(sources)
            path = set_folder / str(row["relpath"])
            images.append(
                {
                    "id": str(row["id"]),
                    "class": str(row["label_name"]),
                    "src": _data_uri(path.read_bytes(), str(path)),
                    "sources": sources,
                    "mode": str(row["mode"]),
                    "strength": float(row["strength"]),
                }
            )
            bar.advance()
    for ids in strips.values():
        real_ids.update(ids)
    pictures = {i: _data_uri((dataset / str(train.at[i, "relpath"])).read_bytes(), i) for i in sorted(real_ids)}
    payload = {
        "format": FORMAT,
        "set": synthetic.card.name,
        "set_manifest_sha256": synthetic.manifest_sha256,
        "dataset": real.card.name,
        "classes": list(synthetic.card.classes),
        "images": images,
        "real": pictures,
        "strips": strips,
    }
    return payload, len(pictures)


def review_page(set_folder: Path, dataset: Path, out: Path, *, real_per_class: int = 8) -> ReviewPage:
    """Write the review page of ``set_folder`` (verified first) with real train images of
    ``dataset`` to ``out`` (temporary name, then rename)."""
    set_folder, dataset, out = Path(set_folder), Path(dataset), Path(out)
    payload, real = _payload(set_folder, dataset, real_per_class)
    # JSON inside a <script> element: "</" would end it, so every "<" is escaped.
    data = json.dumps(payload, separators=(",", ":")).replace("<", "\\u003c")
    template = files("synthdata.review").joinpath("page.html").read_text(encoding="utf-8")
    write_text(out, template.replace(DATA_MARK, data))
    return ReviewPage(out, len(payload["images"]), len(payload["classes"]), real)


def dataset_of(set_folder: Path, dataset: Path | None) -> Path:
    """The real dataset a set was made from: ``dataset`` when given, else ``datasets/<name>`` of
    the dataset its card names."""
    if dataset is not None:
        return Path(dataset)
    card = read_card(set_folder)
    found = named_dataset(card)
    if found is None:
        name = (card.derived_from or {}).get("dataset")
        raise DataError(f"{set_folder}: its card names dataset {name!r}, not found under datasets/; give --dataset")
    return found
