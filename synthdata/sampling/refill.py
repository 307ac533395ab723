"""Replacements for images the validation filter dropped: more images of the same sampling run.

A replacement is image ``next_index[class]`` onwards of its class, made with the run's own
settings (read from its record), seeds, sources and guide, so a refill is as reproducible and
traceable as the set it completes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from synthdata.credentials.sign import ImageSigner
from synthdata.data.card import DatasetCard
from synthdata.data.manifest import to_frame
from synthdata.sampling.anchors import SourcePool, anchor_pool, anchored
from synthdata.sampling.jobs import batches, more_items
from synthdata.sampling.model import SamplingModel, attach_guide, load_sampling_model
from synthdata.sampling.output import RECORD_FILE
from synthdata.sampling.settings import SampleSettings
from synthdata.sampling.writer import common_provenance, manifest_row, write_batches
from synthdata.settings import build


@dataclass
class Replacements:
    """Makes replacements into ``staging``; the model is loaded on the first request only."""

    adapter: Path
    base: Path | None
    dataset: Path
    card: DatasetCard
    record: dict[str, Any]
    """The sampling run's record (``sample.json``)."""
    staging: Path
    description: str = "refill"
    signer: ImageSigner | None = None
    """Signs each replacement as the sample run signed its images (None: unsigned)."""

    def __post_init__(self) -> None:
        self.settings = build(SampleSettings, self.record["settings"], source=RECORD_FILE)
        self.run_id = str(self.record["sample_run_id"])
        self._ready: tuple[SamplingModel, dict[str, Any], SourcePool | None] | None = None

    def __call__(self, wanted: dict[str, int], next_index: dict[str, int]) -> tuple[Path, pd.DataFrame]:
        """``wanted[class]`` images per class from ``next_index[class]`` on; their folder and
        manifest rows, in the order asked."""
        classes = list(self.card.classes)
        if self._ready is None:
            model = attach_guide(load_sampling_model(self.adapter, self.base), self.settings, self.dataset)
            common = common_provenance(model, self.settings, self.card, self.run_id)
            self._ready = model, common, anchor_pool(self.settings.mode, model, self.dataset, classes)
        model, common, pool = self._ready
        items = anchored(more_items(classes, self.run_id, wanted, next_index), self.settings, pool, self.run_id)
        write_batches(
            model,
            batches(items, self.settings.batch_size),
            self.settings,
            self.card,
            common,
            self.run_id,
            self.staging,
            description=self.description,
            pool=pool,
            signer=self.signer,
        )
        rows = to_frame(
            [manifest_row(item, self.card, common, self.run_id, self.staging) for item in items], synthetic=True
        )
        return self.staging, rows.set_index("id").loc[[i.id for i in items]].reset_index()
