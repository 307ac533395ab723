"""Stage: validate a synthetic set before any training run may use it.

1. Provenance: manifest suite, file hashes, adapter and base hashes, source manifest.
2. A domain classifier is trained on the real train split (the fine-tuning set).
3. Every synthetic image is judged, streamed in chunks: domain-classifier probabilities, its
   nearest fine-tuning image in pixel and domain-feature space.
4. Filter: off-class, low-confidence and near-copy images are dropped; the planner makes
   replacements (new indices of the same sampling run) until each class has its quota or the
   rounds run out.
5. The accepted set is measured against *held-out real* images — real train images the
   fine-tune never saw (those the long-tail subsampling left out of ``pool``) and the
   validation split — never the test split: realism with intervals and floors, per-class
   figures, attribute and cluster coverage, diversity, memorisation.
6. Gates from the recipe; the headline, every figure and the data plots for DVC; an HTML report; the accepted set is
   published with its manifest, metadata.csv, shards, card and a Croissant card.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from synthdata.atomic import build_folder
from synthdata.config.recipe import Recipe
from synthdata.credentials.sign import check_same_signer, signer_for
from synthdata.data.card import read_card
from synthdata.data.writer import DatasetWriter
from synthdata.errors import DataError
from synthdata.models.adapter import read_adapter_record
from synthdata.reporting.stage_files import StageFiles
from synthdata.reporting.validation import validation_report
from synthdata.sampling.refill import Replacements
from synthdata.tracking.lineage import link_adapter, log_dataset, log_splits
from synthdata.tracking.mlflow_run import StageRun, find_run, stage_run
from synthdata.validation.assess import assess_set
from synthdata.validation.calibration import calibrate
from synthdata.validation.figures import ValidationFigures
from synthdata.validation.gates import GateResult, enforce
from synthdata.validation.inputs import ValidationInputs, read_validation_inputs
from synthdata.validation.publish import publish_accepted
from synthdata.validation.settings import ValidateSettings

__all__ = ["ValidateResult", "run_validate"]


@dataclass
class ValidateResult:
    out: Path
    accepted: int
    quota: dict[str, int]
    dropped: dict[str, dict[str, int]]
    regenerated: int
    gates: list[GateResult]
    metrics: ValidationFigures
    report: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def run_validate(
    recipe: Recipe,
    dataset: Path,
    synthetic: Path,
    adapter: Path,
    out: Path,
    *,
    pool: Path | None = None,
    report: Path | None = None,
    files: StageFiles | None = None,
    settings: ValidateSettings | None = None,
) -> ValidateResult:
    """Validate ``synthetic``; publish the accepted set as ``out``; ``files`` takes the headline,
    every figure and the data plots."""
    settings = settings or recipe.validate
    started = time.monotonic()
    # 1-2. Provenance; the domain classifier and the near-copy thresholds.
    inputs = read_validation_inputs(dataset, synthetic, adapter, recipe.finetune.base)
    signer = signer_for(recipe.provenance.signing, dataset)
    check_same_signer(signer, read_card(synthetic), synthetic)  # replacements are signed as the originals
    calibration = calibrate(dataset, pool, inputs, settings)
    build_key = inputs.build_key(settings, adapter) + (f"/signed {signer.tag}" if signer is not None else "")
    writer = DatasetWriter(out, build_key)
    params = {"validate": asdict(settings), "dataset": dataset.name, "synthetic": synthetic.name}
    resume_run_id = find_run("validate", recipe.name, build_key=build_key[:32])
    with stage_run("validate", recipe.name, params, resume_run_id=resume_run_id, output=out) as run:
        run.set_tags(
            {
                "build_key": build_key[:32],
                "sample_run_id": inputs.sample_record["sample_run_id"],
                "synthetic_manifest_sha256": inputs.synthetic_manifest_sha256,
            }
        )
        _log_lineage(run, recipe.name, inputs, dataset, synthetic, pool, adapter)
        replacements = Replacements(
            adapter,
            recipe.finetune.base,
            dataset,
            inputs.card,
            inputs.sample_record,
            writer.staging,
            description=f"refill {recipe.name}",
            signer=signer,
        )
        # 3-5. Judge every image, drop, refill; measure the accepted set; the gates.
        assessed = assess_set(inputs, calibration, settings, replacements)
        figures, dropped, accepted = assessed.figures, assessed.dropped, assessed.filtered.accepted
        # 6. The report reads every judged image, dropped replacements included: before publishing
        # removes those from the staging folder.
        paths = (
            build_folder(report, lambda folder: validation_report(folder, recipe.name, inputs, calibration, assessed))
            if report
            else []
        )
        run.log_metrics(figures.flat())  # before publishing: tracking takes the figures first
        if assessed.passed:  # a set that fails a gate is never published where a trainer would find it
            publish_accepted(writer, synthetic, accepted, inputs.card, inputs.sample_record, dropped, figures, signer)
        paths += (files or StageFiles()).write(
            figures.headline(), json.dumps(figures.jsonable(), indent=2) + "\n", figures.tables()
        )
        for path in paths:
            run.log_artifact(path, "validate")
        seconds = time.monotonic() - started
        regenerated = assessed.filtered.regenerated
        result = ValidateResult(
            out, len(accepted), inputs.quota, dropped, regenerated, assessed.gates, figures, paths, seconds
        )
    enforce(assessed.gates)
    if not result.accepted:
        raise DataError(
            f"{synthetic}: no image passed the filter (dropped: {json.dumps(dropped)}); nothing to publish"
        )
    return result


def _log_lineage(
    run: StageRun,
    recipe: str,
    inputs: ValidationInputs,
    dataset: Path,
    synthetic: Path,
    pool: Path | None,
    adapter: Path,
) -> None:
    """What the run reads, as MLflow dataset inputs, and the adapter version that made the set."""
    log_dataset(run, synthetic, "synthetic")
    log_splits(run, dataset, ("train", "val"))
    if pool is not None:  # the parent's train images the long-tailed split left out: held-out real
        log_dataset(run, pool, "val", split="train")
    link_adapter(run, recipe, read_adapter_record(adapter)["sha256"])
