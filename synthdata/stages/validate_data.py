"""Stage: run the manifest suite and the file check on a recipe's datasets; write the headline
(train images of the last dataset named) and every figure (per dataset: expectations, images per
split, manifest hash)."""

from __future__ import annotations

import json
from pathlib import Path

from synthdata.data.card import read_card
from synthdata.data.expectations import validate_dataset
from synthdata.data.manifest import read_manifest, verify_dataset
from synthdata.reporting.stage_files import StageFiles
from synthdata.tracking.mlflow_run import stage_run


def run_validate_data(recipe_name: str, datasets: list[Path], files: StageFiles | None = None) -> dict:
    """Validate every folder in ``datasets``; the first failure raises, naming its rows."""
    summary: dict[str, dict] = {}
    with stage_run("validate-data", recipe_name, {"datasets": [str(d) for d in datasets]}) as run:
        for folder in datasets:
            # the suite first: it names the expectation a defective table breaks; then the files and the card
            report = validate_dataset(folder, read_manifest(folder), read_card(folder), files=False)
            verified = verify_dataset(folder)
            frame, card = verified.frame, verified.card
            summary[folder.name] = {
                "manifest_sha256": verified.manifest_sha256,
                "expectations": report.evaluated,
                "failed": len(report.failures),
                "images": len(frame),
                "classes": len(card.classes),
                **{f"images_{s}": int((frame["split"] == s).sum()) for s in card.counts},
            }
            run.set_tags({f"manifest_sha256.{folder.name}": verified.manifest_sha256})
            run.log_metrics({f"{folder.name}.{k}": v for k, v in summary[folder.name].items() if isinstance(v, int)})
        if files is not None:
            # the headline: train images of the last dataset named (the one the pipeline trains on)
            headline = {"train": summary[datasets[-1].name].get("images_train", 0)}
            for path in files.write(headline, json.dumps(summary, indent=2, sort_keys=True) + "\n"):
                run.log_artifact(path)
    return summary
