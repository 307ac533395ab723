"""Stage: build the long-tailed variant of an ingested dataset."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from synthdata.config.recipe import Recipe
from synthdata.data.card import read_card
from synthdata.data.longtail import LongtailPlan, LongtailSettings, build_longtail
from synthdata.data.manifest import verify_dataset
from synthdata.tracking.lineage import log_dataset
from synthdata.tracking.mlflow_run import stage_run


def run_longtail(recipe: Recipe, settings: LongtailSettings, parent: Path, out: Path) -> LongtailPlan:
    verify_dataset(parent)
    with stage_run("longtail", recipe.name, {"longtail": asdict(settings)}, output=out) as run:
        started = time.perf_counter()
        _, plan = build_longtail(parent, out, settings)
        card = read_card(out)
        run.set_tags(
            {
                "manifest_sha256": card.manifest_sha256,
                "parent_manifest_sha256": card.derived_from["parent_manifest_sha256"],
            }
        )
        run.log_metrics({f"train_{name}": n for name, n in plan.targets.items()})
        run.log_metrics({"n_max": plan.n_max, "seconds": time.perf_counter() - started})
        run.log_artifact(out / "README.md", "card")
        log_dataset(run, parent, "source")
    return plan
