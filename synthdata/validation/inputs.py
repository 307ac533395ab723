"""What validation reads: the real dataset (verified), the synthetic set (its provenance checked),
the sample run's record with its quota, and the resolution images are judged at."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from synthdata.data.card import DatasetCard
from synthdata.data.manifest import VerifiedDataset, manifest_hash, verify_dataset
from synthdata.hashing import sha256_bytes
from synthdata.models.adapter import read_adapter_record
from synthdata.sampling.output import RECORD_FILE
from synthdata.validation.provenance_check import check_provenance

if TYPE_CHECKING:
    from synthdata.validation.settings import ValidateSettings


@dataclass
class ValidationInputs:
    """A synthetic set and the real dataset it was made from, both checked."""

    dataset: VerifiedDataset
    """The real dataset the adapter was fine-tuned on."""
    synthetic: Path
    source_frame: pd.DataFrame
    """The synthetic set's manifest, its provenance checked."""
    sample_record: dict[str, Any]
    """The sample run's record: its id, settings and quota plan."""
    quota: dict[str, int]
    """Synthetic images planned per class (classes with none left out)."""
    size: int
    """The resolution images are judged at."""

    @property
    def card(self) -> DatasetCard:
        return self.dataset.card

    @property
    def classes(self) -> list[str]:
        return list(self.dataset.card.classes)

    @cached_property
    def synthetic_manifest_sha256(self) -> str:
        return manifest_hash(self.source_frame)

    def build_key(self, settings: ValidateSettings, adapter: Path) -> str:
        """What this validation's output follows from: the synthetic set's content, the settings and
        the adapter (a rerun with the same key resumes)."""
        return sha256_bytes(
            json.dumps([self.synthetic_manifest_sha256, asdict(settings), str(adapter)], sort_keys=True).encode()
        )

    @property
    def mode(self) -> str:
        """How the images were made: from noise, or from real sources (img2img, interpolation)."""
        return str(self.sample_record["settings"].get("mode", "noise"))


def read_validation_inputs(dataset: Path, synthetic: Path, adapter: Path, base: Path | str | None) -> ValidationInputs:
    """Verify ``dataset``, check the provenance of ``synthetic`` (made by ``adapter`` on ``base``
    from it) and read the sample run's record."""
    verified = verify_dataset(dataset)
    card = verified.card
    source_frame = check_provenance(synthetic, adapter, base, card.manifest_sha256)
    sample_record = json.loads((synthetic / RECORD_FILE).read_text())
    quota = {row["class"]: int(row["synthetic"]) for row in sample_record["plan"] if row["synthetic"]}
    # Judge at the resolution the generator works at (a 32 px model's images are upsampled to a
    # 64 px source's size): at the source size the classifier would learn to spot upsampling,
    # not content, and train 4x slower.
    size = min(card.width, int(read_adapter_record(adapter)["sample_size"]))
    return ValidationInputs(verified, synthetic, source_frame, sample_record, quota, size)
