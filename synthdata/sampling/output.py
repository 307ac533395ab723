"""What a synthetic set looks like on disk, so that any trainer can read it.

    <out>/<class>/<id>.png     the ImageFolder layout; every PNG carries its provenance in text
                               chunks and an XMP packet (IPTC digitalSourceType)
    <out>/metadata.csv         the Hugging Face ImageFolder convention: file_name, label, provenance
    <out>/manifest.parquet     the canonical manifest columns plus the provenance columns
    <out>/shards/*.tar         optional WebDataset shards: <id>.png, <id>.cls, <id>.json per image
    <out>/card.json, README.md the dataset card; sample.json the run's plan and settings

Images come back in the source dataset's own size and channel count.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthdata.atomic import commit, partial_name, write_bytes
from synthdata.credentials.sign import SIDECAR_SUFFIX
from synthdata.data.manifest import DIGITAL_SOURCE_TYPE, PROVENANCE_COLUMNS, REVIEW_COLUMNS

RECORD_FILE = "sample.json"
"""The sampling run's record inside a synthetic set: run id, identity, plan, settings."""
METADATA_FILE = "metadata.csv"
SHARDS_DIR = "shards"

_XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    Iptc4xmpExt:DigitalSourceType="{source_type}"
    xmp:CreatorTool="synthdata {version}"/>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>"""


def to_dataset_format(image: np.ndarray, channels: int) -> np.ndarray:
    """A generated ``(C, H, W)`` uint8 image -> ``(H, W, channels)`` uint8 in the source dataset's
    channel count (RGB averaged to grey, grey repeated to RGB). The size stays the generator's:
    a set is never silently up-scaled to a larger dataset's size (the manifest and card record it)."""
    array = np.ascontiguousarray(image.transpose(1, 2, 0))
    if array.shape[2] == 3 and channels == 1:
        array = np.rint(array.mean(axis=2, keepdims=True)).astype(np.uint8)
    elif array.shape[2] == 1 and channels == 3:
        array = np.repeat(array, 3, axis=2)
    return array


def png_text(row: dict[str, Any]) -> dict[str, str]:
    """The PNG text chunks of one image: class, label and every provenance field.

    ``digitalSourceType`` is spelled as in IPTC/C2PA; the other keys are the manifest's columns."""
    text = {
        "digitalSourceType": str(row["digital_source_type"]),
        "class": str(row["label_name"]),
        "label": str(row["label"]),
        "id": str(row["id"]),
    }
    for column in PROVENANCE_COLUMNS:
        if column != "digital_source_type":
            text[column] = str(row[column])
    text["Software"] = f"synthdata {row['synthdata_version']}"
    return text


def xmp_packet(version: str, source_type: str = DIGITAL_SOURCE_TYPE) -> str:
    return _XMP.format(source_type=source_type, version=version)


def write_metadata_csv(frame: pd.DataFrame, folder: Path) -> Path:
    """``metadata.csv`` for Hugging Face ``imagefolder``: ``file_name`` relative to the folder,
    ``label`` as the class name, then id, sha256 and the provenance columns."""
    table = pd.DataFrame(
        {"file_name": frame["relpath"], "label": frame["label_name"], "id": frame["id"], "sha256": frame["sha256"]}
    )
    for column in [*PROVENANCE_COLUMNS, *(c for c in REVIEW_COLUMNS if c in frame.columns)]:
        table[column] = frame[column]
    target = folder / METADATA_FILE
    write_bytes(target, table.to_csv(index=False, lineterminator="\n").encode())
    return target


def _tar_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    # Fixed owner, mode and time: the same images give the same shard bytes.
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    archive.addfile(info, io.BytesIO(data))


def write_shards(frame: pd.DataFrame, folder: Path, shard_size: int, prefix: str) -> list[Path]:
    """WebDataset shards ``shards/<prefix>-NNNNNN.tar`` of ``shard_size`` images each, in
    manifest order; each image is ``<id>.png`` (the file's exact bytes), ``<id>.cls`` (label),
    ``<id>.json`` (its manifest row) and, for a set signed with sidecars, ``<id>.c2pa``."""
    shards_dir = folder / SHARDS_DIR
    shards_dir.mkdir(parents=True, exist_ok=True)
    written = []
    records = frame.to_dict(orient="records")
    for number, start in enumerate(range(0, len(records), shard_size)):
        target = shards_dir / f"{prefix}-{number:06d}.tar"
        partial = partial_name(target)
        with tarfile.open(partial, "w", format=tarfile.USTAR_FORMAT) as archive:
            for row in records[start : start + shard_size]:
                key = str(row["id"])
                _tar_member(archive, f"{key}.png", (folder / row["relpath"]).read_bytes())
                _tar_member(archive, f"{key}.cls", str(int(row["label"])).encode())
                _tar_member(archive, f"{key}.json", json.dumps(_plain(row), sort_keys=True).encode())
                side = (folder / row["relpath"]).with_suffix(SIDECAR_SUFFIX)
                if side.is_file():
                    _tar_member(archive, f"{key}{SIDECAR_SUFFIX}", side.read_bytes())
        commit(partial, target)
        written.append(target)
    return written


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A manifest row with numpy/pandas scalars turned into JSON types."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
