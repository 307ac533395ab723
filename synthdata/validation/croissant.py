"""A Croissant (MLCommons, JSON-LD) card for a validated synthetic set, with its RAI fields.

Croissant 1.0 describes the files (the manifest, the PNG file set, the WebDataset shards) and
the record set a loader reads; the Responsible-AI vocabulary (``rai:``) states how the data was
collected (generated), its known biases and limitations, its synthetic origin and what it was
derived from. Written as ``croissant.json`` beside the manifest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synthdata.atomic import write_text
from synthdata.data.card import DatasetCard
from synthdata.data.manifest import MANIFEST_FILE, PROVENANCE_COLUMNS, source_type

CROISSANT_FILE = "croissant.json"

_CONTEXT = {  # the Croissant 1.0 context, plus prov for the derivation
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "prov": "http://www.w3.org/ns/prov#",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

_TYPES = {"string": "sc:Text", "int64": "sc:Integer", "float64": "sc:Float"}


def croissant(
    card: DatasetCard,
    source: DatasetCard,
    *,
    manifest_file_sha256: str,
    shards: list[str],
    dropped: dict[str, dict[str, int]],
    known_gaps: list[str],
) -> dict[str, Any]:
    """The JSON-LD document for the synthetic set ``card``, made from the real set ``source``;
    ``manifest_file_sha256`` is the checksum of the ``manifest.parquet`` file itself (the
    manifest's content hash is on the card)."""
    derived = card.derived_from or {}
    return {
        **_dataset(card, source),
        **_derivation(source, derived),
        "distribution": _distribution(card, manifest_file_sha256, shards),
        "recordSet": _record_sets(),
        **_responsible_ai(card, source, derived, dropped, known_gaps),
        "sc:digitalSourceType": source_type(str((derived.get("sample") or {}).get("mode", "noise"))),
    }


def _dataset(card: DatasetCard, source: DatasetCard) -> dict[str, Any]:
    """The schema.org description: name, licence and citation of the source, version."""
    return {
        "@context": _CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": ["http://mlcommons.org/croissant/1.0", "http://mlcommons.org/croissant/RAI/1.0"],
        "name": card.name,
        "description": card.description,
        "license": source.licence,
        "citeAs": source.citation,
        "url": source.homepage,
        "version": card.created_by.get("synthdata", "unknown"),
        "isLiveDataset": False,
    }


def _derivation(source: DatasetCard, derived: dict[str, Any]) -> dict[str, Any]:
    """What the set was derived from (source manifest, base model, adapter) and the sample run."""
    return {
        "isBasedOn": {
            "@type": "sc:Dataset",
            "name": source.name,
            "url": source.homepage,
            "identifier": f"manifest sha256 {source.manifest_sha256}",
        },
        "prov:wasDerivedFrom": [
            {"@id": f"dataset:{source.name}", "identifier": source.manifest_sha256},
            {"@id": f"model:{derived.get('base_id', 'unknown')}", "identifier": derived.get("base_sha256", "")},
            {"@id": "adapter", "identifier": derived.get("adapter_sha256", "")},
        ],
        "prov:wasGeneratedBy": {
            "@type": "prov:Activity",
            "name": f"synthdata sample run {derived.get('sample_run_id', '')}",
            "prov:used": derived.get("sample", {}),
        },
    }


def _distribution(card: DatasetCard, manifest_file_sha256: str, shards: list[str]) -> list[dict[str, Any]]:
    """The files: the manifest, the PNG file set and, when written, the WebDataset shards."""
    distribution: list[dict[str, Any]] = [
        {
            "@type": "cr:FileObject",
            "@id": "manifest",
            "name": MANIFEST_FILE,
            "contentUrl": MANIFEST_FILE,
            "encodingFormat": "application/x-parquet",
            "sha256": manifest_file_sha256,
            "description": f"one row per image with its provenance; content hash {card.manifest_sha256}",
        },
        {
            "@type": "cr:FileSet",
            "@id": "png-files",
            "name": "png-files",
            "encodingFormat": "image/png",
            "includes": "*/*.png",
        },
    ]
    if shards:
        distribution.append(
            {
                "@type": "cr:FileSet",
                "@id": "shards",
                "name": "webdataset shards",
                "encodingFormat": "application/x-tar",
                "includes": "shards/*.tar",
            }
        )
    return distribution


def _record_sets() -> list[dict[str, Any]]:
    # Two record sets: the images as files (content, path, class from the folder name) and the
    # manifest's provenance rows, whose relpath references the image's path (the join).
    return [
        {
            "@type": "cr:RecordSet",
            "@id": "images",
            "name": "images",
            "key": {"@id": "images/relpath"},
            "field": _image_fields(),
        },
        {
            "@type": "cr:RecordSet",
            "@id": "synthetic",
            "name": "synthetic",
            "key": {"@id": "synthetic/relpath"},
            "field": _synthetic_fields(),
        },
    ]


def _image_fields() -> list[dict[str, Any]]:
    """The ``images`` record set: each PNG's content, its path and its class (the folder name)."""
    return [
        {
            "@type": "cr:Field",
            "@id": "images/image",
            "name": "image",
            "dataType": "sc:ImageObject",
            "source": {"fileSet": {"@id": "png-files"}, "extract": {"fileProperty": "content"}},
        },
        {
            "@type": "cr:Field",
            "@id": "images/relpath",
            "name": "relpath",
            "dataType": "sc:Text",
            "source": {
                "fileSet": {"@id": "png-files"},
                "extract": {"fileProperty": "fullpath"},
                "transform": {"regex": "^(?:.*/)?([^/]+/[^/]+\\.png)$"},
            },
        },
        {
            "@type": "cr:Field",
            "@id": "images/label",
            "name": "label",
            "dataType": "sc:Text",
            "source": {
                "fileSet": {"@id": "png-files"},
                "extract": {"fileProperty": "fullpath"},
                "transform": {"regex": "^(?:.*/)?([^/]+)/[^/]+\\.png$"},
            },
        },
    ]


def _synthetic_fields() -> list[dict[str, Any]]:
    """The ``synthetic`` record set: the manifest's relpath (joined to the images), label and
    provenance columns."""
    fields = [
        {
            "@type": "cr:Field",
            "@id": "synthetic/relpath",
            "name": "relpath",
            "dataType": "sc:Text",
            "source": {"fileObject": {"@id": "manifest"}, "extract": {"column": "relpath"}},
            "references": {"field": {"@id": "images/relpath"}},
        },
        {
            "@type": "cr:Field",
            "@id": "synthetic/label",
            "name": "label",
            "dataType": "sc:Text",
            "source": {"fileObject": {"@id": "manifest"}, "extract": {"column": "label_name"}},
        },
    ]
    fields += [
        {
            "@type": "cr:Field",
            "@id": f"synthetic/{column}",
            "name": column,
            "dataType": _TYPES[dtype],
            "source": {"fileObject": {"@id": "manifest"}, "extract": {"column": column}},
        }
        for column, dtype in PROVENANCE_COLUMNS.items()
    ]
    return fields


def _responsible_ai(
    card: DatasetCard,
    source: DatasetCard,
    derived: dict[str, Any],
    dropped: dict[str, dict[str, int]],
    known_gaps: list[str],
) -> dict[str, Any]:
    """The ``rai:`` fields: how the images were made, what was dropped, biases and limitations."""
    counts = card.counts.get("train", {})
    return {
        "rai:dataCollection": (
            "No image was collected: every image was generated by a diffusion model "
            f"({derived.get('base_id', 'a base model')}) adapted with LoRA to the train split of {source.name}, "
            "sampled with a class-balanced quota plan, then filtered by a domain classifier trained on the real "
            "train split and by a near-copy check against the fine-tuning images."
        ),
        "rai:dataCollectionType": ["Synthetic data"],
        "rai:dataCollectionRawData": f"{source.name} train split (manifest sha256 {source.manifest_sha256}); licence {source.licence}",
        "rai:dataPreprocessingProtocol": [
            f"Images at the generator's size ({card.width}x{card.height}; the real images are "
            f"{source.width}x{source.height}), {card.channels} channel(s) as the real ones, PNG.",
            f"Dropped and replaced before acceptance: {_drop_text(dropped) or 'none'}.",
        ],
        "rai:dataBiases": [
            "A generative model reproduces, and can amplify, the biases of its training data: the rare classes "
            "were learnt from very few real images, so their synthetic images cover only what those images show.",
            "The quality filter keeps images a classifier trained on the same real data recognises; it favours "
            "typical-looking images and can narrow the set.",
            *known_gaps,
        ],
        "rai:dataLimitations": [
            "Synthetic images are for training only; never evaluate a model on them.",
            "Realism figures are Fréchet distances on EfficientNet-Lite0 or domain-classifier features, not "
            "Inception FID, and are meaningful only beside their real-vs-real floor.",
            f"Counts per class: {json.dumps(counts, sort_keys=True)}.",
        ],
        "rai:dataUseCases": ["Augmenting the rare classes of the source's train split, at equal training budget."],
        "rai:personalSensitiveInformation": "Inherits whatever the source dataset holds; images are checked for near-copies of training images.",
        "rai:hasSyntheticData": True,
    }


def _drop_text(dropped: dict[str, dict[str, int]]) -> str:
    """``class: n reason, ...; ...`` for every class with a drop."""
    return "; ".join(
        f"{cls}: " + ", ".join(f"{n} {why}" for why, n in reasons.items())
        for cls, reasons in dropped.items()
        if reasons
    )


def write_croissant(folder: Path, document: dict[str, Any]) -> Path:
    return write_text(Path(folder) / CROISSANT_FILE, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
