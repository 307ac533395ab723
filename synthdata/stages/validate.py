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
6. Gates from the recipe; ``metrics.json`` for DVC; an HTML report; the accepted set is
   published with its manifest, metadata.csv, shards, card and a Croissant card.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from synthdata.atomic import build_folder, write_text
from synthdata.config.recipe import Recipe
from synthdata.data.manifest import manifest_hash, verify_dataset
from synthdata.data.tensors import load_files, load_split
from synthdata.data.writer import DatasetWriter
from synthdata.errors import DataError
from synthdata.hashing import sha256_bytes
from synthdata.models.adapter import read_adapter_record
from synthdata.reporting.validation import validation_report
from synthdata.sampling.output import RECORD_FILE
from synthdata.sampling.refill import Replacements
from synthdata.tracking.mlflow_run import find_run, stage_run
from synthdata.validation.domain import train_domain_classifier
from synthdata.validation.figures import ValidationFigures, measure_set
from synthdata.validation.filter import Judge, Real, heldout_real, run_filter
from synthdata.validation.gates import GateResult, enforce, evaluate_gates
from synthdata.validation.lineage import check_lineage
from synthdata.validation.memorisation import nearest, pixel_vectors
from synthdata.validation.provenance_check import check_provenance
from synthdata.validation.publish import publish_accepted
from synthdata.validation.settings import ValidateSettings

__all__ = ["ValidateResult", "heldout_real", "run_validate"]


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
    metrics_path: Path | None = None,
    settings: ValidateSettings | None = None,
) -> ValidateResult:
    settings = settings or recipe.validate
    started = time.monotonic()
    verified = verify_dataset(dataset)
    card = verified.card
    source_frame = check_provenance(synthetic, adapter, recipe.finetune.base, card.manifest_sha256)
    sample_record = json.loads((synthetic / RECORD_FILE).read_text())
    quota = {row["class"]: int(row["synthetic"]) for row in sample_record["plan"] if row["synthetic"]}
    # Judge at the resolution the generator works at (a 32 px model's images are upsampled to a
    # 64 px source's size): at the source size the classifier would learn to spot upsampling,
    # not content, and train 4x slower.
    size = min(card.width, int(read_adapter_record(adapter)["sample_size"]))
    channels, classes = card.channels, list(card.classes)
    train_images, train_labels, _ = load_split(dataset, "train", size=size, channels=channels)
    train_ids = sorted(verified.frame.loc[verified.frame["split"] == "train", "id"].astype(str))  # load_split's order
    train = Real(train_images, train_labels, train_ids)
    check_lineage(source_frame, set(train_ids), str(synthetic))
    heldout = heldout_real(dataset, pool, size, channels)
    val_rows = verified.frame[verified.frame["split"] == "val"]
    torch.manual_seed(settings.seed)
    classifier = train_domain_classifier(train.images, train.labels, classes, settings.classifier)
    val_accuracy = classifier.per_class_accuracy(
        load_files(dataset, list(val_rows["relpath"]), size=size, channels=channels)
        if len(val_rows)
        else torch.empty(0),
        torch.tensor(val_rows["label"].to_numpy(), dtype=torch.int64),
    )
    train_pixels = pixel_vectors(train.images)
    train_features = classifier(train.images)[1]
    heldout_probs, heldout_features = classifier(heldout.images)
    # Real images' nearest-neighbour distances to the fine-tuning set: the scale every copy test is calibrated on.
    real_nearest = {
        "pixel": nearest(pixel_vectors(heldout.images), train_pixels)[0].double(),
        "feature": nearest(heldout_features, train_features)[0].double(),
    }
    thresholds = {
        space: float(torch.quantile(distances, settings.memorisation_quantile))
        for space, distances in real_nearest.items()
    }
    judge = Judge(classifier, train, size, channels, thresholds, train_pixels, train_features)
    build_key = sha256_bytes(
        json.dumps([manifest_hash(source_frame), asdict(settings), str(adapter)], sort_keys=True).encode()
    )
    writer = DatasetWriter(out, build_key)
    params = {"validate": asdict(settings), "dataset": dataset.name, "synthetic": synthetic.name}
    run_id = sample_record["sample_run_id"]
    with stage_run(
        "validate",
        recipe.name,
        params,
        resume_run_id=find_run("validate", recipe.name, build_key=build_key[:32]),
        output=out,
    ) as run:
        run.set_tags(
            {
                "build_key": build_key[:32],
                "sample_run_id": run_id,
                "synthetic_manifest_sha256": manifest_hash(source_frame),
            }
        )
        replacements = Replacements(
            adapter,
            recipe.finetune.base,
            dataset,
            card,
            sample_record,
            writer.staging,
            description=f"refill {recipe.name}",
        )
        filtered = run_filter(judge, synthetic, source_frame, quota, settings.filter, replacements)
        everything, chosen, accepted = filtered.judged, filtered.chosen, filtered.accepted
        dropped = filtered.dropped(classes)
        figures = measure_set(
            settings, everything, chosen, heldout, heldout_features, train, classes, quota, thresholds, real_nearest
        )
        figures.lineage["mode"] = str(sample_record["settings"].get("mode", "noise"))
        figures.domain_classifier = {"val_accuracy": val_accuracy, "train_steps": classifier.log.steps}
        figures.filter = {
            "dropped": dropped,
            "regenerated": filtered.regenerated,
            "accepted": int(len(accepted)),
            "thresholds": thresholds,
        }
        gate_results = evaluate_gates(settings.gates, figures)
        figures.gates = [g.as_dict() for g in gate_results]
        figures.passed = all(g.passed for g in gate_results) and not accepted.empty
        # The report reads every judged image, dropped replacements included: before publishing
        # removes those from the staging folder.
        paths = (
            build_folder(
                report,
                lambda folder: validation_report(
                    folder, recipe.name, classes, train, heldout, everything, chosen, figures, quota, real_nearest
                ),
            )
            if report
            else []
        )
        run.log_metrics(figures.flat())  # before publishing: tracking takes the figures first
        if figures.passed:  # a set that fails a gate is never published where a trainer would find it
            publish_accepted(writer, synthetic, accepted, card, sample_record, dropped, figures)
        if metrics_path is not None:
            paths.append(write_text(metrics_path, json.dumps(figures.jsonable(), indent=2) + "\n"))
        for path in paths:
            run.log_artifact(path, "validate")
        result = ValidateResult(
            out,
            len(accepted),
            quota,
            dropped,
            filtered.regenerated,
            gate_results,
            figures,
            paths,
            time.monotonic() - started,
        )
    enforce(gate_results)
    if not result.accepted:
        raise DataError(
            f"{synthetic}: no image passed the filter (dropped: {json.dumps(dropped)}); nothing to publish"
        )
    return result
