"""The dataset card: what a dataset is, where it came from and how it was made.

Written as ``card.json`` (machine-readable, read by later stages) and ``README.md`` (for people)
inside every dataset folder. No timestamps: the same inputs give the same card, byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synthdata.atomic import write_text
from synthdata.errors import DataError
from synthdata.paths import path_component

CARD_FILE = "card.json"


@dataclass
class DatasetCard:
    name: str
    source: str
    description: str
    licence: str
    citation: str
    homepage: str
    classes: list[str]
    channels: int
    width: int
    height: int
    counts: dict[str, dict[str, int]]
    """split -> class name -> images."""
    manifest_sha256: str
    split_protocol: str
    files: list[dict[str, Any]] = field(default_factory=list)
    """The pinned input files: path, sha256, url."""
    removed: dict[str, int] = field(default_factory=dict)
    """Why images of the source were left out, and how many (exact duplicates, conflicts)."""
    resize: dict[str, Any] | None = None
    """How images were made square (policy, target size) and their native sizes before it."""
    derived_from: dict[str, Any] | None = None
    """For a derived dataset: the parent's name and manifest hash, and the derivation's settings."""
    created_by: dict[str, str] = field(default_factory=dict)
    credentials: dict[str, Any] | None = None
    """A synthetic set's Content Credentials: how many images are signed, how, by whom."""
    review: dict[str, Any] | None = None
    """A person's review of a synthetic set: who, when, how many images reviewed and rejected."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    def to_markdown(self) -> str:
        lines = [
            f"# {self.name}",
            "",
            self.description,
            "",
            f"- **Source:** {self.source} ({self.homepage})",
            f"- **Licence:** {self.licence}",
            f"- **Cite:** {self.citation}",
            f"- **Images:** {self.width}x{self.height}, {self.channels} channel(s), PNG",
            f"- **Manifest sha256:** `{self.manifest_sha256}`",
            f"- **Splits:** {self.split_protocol}",
            f"- **Made by:** synthdata {self.created_by.get('synthdata', '?')}, "
            f"commit {self.created_by.get('git_commit', '?')}",
        ]
        if self.resize:
            lines.append(f"- **Resized:** {_resize_line(self.resize)}")
        if self.derived_from:
            lines.append(f"- **Derived from:** `{json.dumps(self.derived_from, sort_keys=True)}`")
        if self.credentials is not None:
            lines.append(f"- **Content Credentials:** {_credentials_line(self.credentials)}")
        if self.review is not None:
            lines.append(f"- **Human review:** {_review_line(self.review)}")
        if self.removed:
            lines.append("- **Left out of the source:** " + ", ".join(f"{k}: {v}" for k, v in self.removed.items()))
        splits = list(self.counts)
        lines += ["", "| class | " + " | ".join(splits) + " |", "|---|" + "---:|" * len(splits)]
        for name in self.classes:
            lines.append(f"| {name} | " + " | ".join(str(self.counts[s].get(name, 0)) for s in splits) + " |")
        totals = " | ".join(str(sum(self.counts[s].values())) for s in splits)
        lines.append(f"| **total** | {totals} |")
        if self.files:
            lines += ["", "Input files:", ""]
            lines += [
                f"- `{f['path']}` sha256 `{f['sha256']}` from {f['url'] or 'the mirror only'}" for f in self.files
            ]
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> None:
        write_text(folder / CARD_FILE, self.to_json())
        write_text(folder / "README.md", self.to_markdown())


def _credentials_line(credentials: dict[str, Any]) -> str:
    """Who signed a set and how, in words."""
    if not credentials.get("signer"):
        return "none: the images and the manifest are unsigned (set provenance.signing to sign them)"
    where = {"embedded": "embedded in each PNG", "sidecar": "as a .c2pa file beside each PNG"}
    images = (
        f"{credentials['signed']:,} images signed {where.get(credentials['credentials'], '')}; "
        if credentials.get("signed")
        else "no per-image credential; "
    )
    return (
        f"{images}the manifest signed in `{credentials['dataset_manifest']}`; signer {credentials['signer']}, "
        f"issuer {credentials['issuer']}. Check them with `synthdata verify <this folder>`."
    )


def _review_line(review: dict[str, Any]) -> str:
    """A person's review of a set, in words."""
    return (
        f"{review['reviewed']:,} of {review['images']:,} images reviewed by {review['reviewer']} "
        f"({review['reviewed_at']}): {review['accepted']:,} accepted, {review['rejected']:,} rejected and removed, "
        f"{review['skipped']:,} skipped; decisions file sha256 `{review['decisions_sha256']}`"
    )


def _resize_line(resize: dict[str, Any]) -> str:
    sizes = ", ".join(f"{size} ({n})" for size, n in resize["native_sizes"].items())
    other = f", other sizes ({resize['native_sizes_other']})" if resize["native_sizes_other"] else ""
    native = f"native sizes {sizes}{other}; {resize['non_square']} not square"
    if resize["policy"] == "none":
        return f"no; {native}"
    fill = f" (bars of grey level {resize['pad_fill']})" if "pad_fill" in resize else ""
    return f"to {resize['image_size']} px by {resize['policy']}{fill}; {native}"


def read_card(folder: Path | str) -> DatasetCard:
    path = Path(folder) / CARD_FILE
    if not path.is_file():
        raise DataError(f"{path}: no dataset card")
    try:
        card = DatasetCard(**json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError) as exc:
        raise DataError(f"{path}: malformed dataset card ({exc})") from None
    for name in card.classes:  # every later stage makes class folders and grids from these names
        path_component(name, path)
    return card


def named_dataset(card: DatasetCard | None) -> Path | None:
    """``datasets/<name>`` of the dataset a derived set's card says it was made from, when that
    folder holds a dataset (the layout ``dvc.yaml`` writes); None otherwise."""
    name = str(((card.derived_from or {}).get("dataset") if card is not None else None) or "")
    candidate = Path("datasets") / name
    return candidate if name and (candidate / "manifest.parquet").is_file() else None
