"""Stage: fetch a recipe's source and ingest it into a dataset folder."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from synthdata.config.recipe import Recipe
from synthdata.data.ingest import IngestResult, Resize, ingest
from synthdata.data.sources import TableColumns, get_source
from synthdata.tracking.mlflow_run import stage_run


def run_ingest(recipe: Recipe, out: Path) -> IngestResult:
    data = recipe.data
    source = get_source(
        data.source,
        path=data.path,
        dataset=out.name,
        classes=data.classes,
        channels=data.channels,
        licence=data.licence,
        labels=data.labels,
        columns=TableColumns(data.image_column, data.label_column, data.split_column, data.group_column),
    )
    resize = Resize(data.image_size, data.resize, data.pad_fill)
    with stage_run("ingest", recipe.name, {"data": asdict(data)}, output=out) as run:
        started = time.perf_counter()
        result = ingest(source, out, split=data.split, resize=resize)
        run.set_tags({"manifest_sha256": result.manifest_sha256})
        metrics = {f"images_{s}": sum(c.values()) for s, c in result.counts.items()}
        metrics |= {f"removed_{k}": v for k, v in result.removed.items()}
        run.log_metrics({**metrics, "images": result.images, "seconds": time.perf_counter() - started})
        run.log_artifact(out / "README.md", "card")
    return result
