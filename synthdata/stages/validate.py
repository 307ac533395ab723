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
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from synthdata.atomic import build_folder, write_bytes, write_text
from synthdata.config.recipe import Recipe, ValidateSettings
from synthdata.data.card import DatasetCard, read_card
from synthdata.data.manifest import (
    MANIFEST_FILE, SYNTHETIC_SOURCE, manifest_hash, read_manifest, to_frame, verify_dataset, write_manifest,
)  # fmt: skip
from synthdata.data.writer import DatasetWriter
from synthdata.errors import DataError
from synthdata.models.adapter import read_adapter_record
from synthdata.hashing import file_sha256, sha256_bytes
from synthdata.provenance import created_by
from synthdata.reporting.grid import save_grid
from synthdata.reporting.html import HtmlReport
from synthdata.reporting.plots import attribute_histograms, class_balance, source_distance_plot
from synthdata.sampling.jobs import batches, more_items
from synthdata.sampling.anchors import anchor_pool, anchored
from synthdata.sampling.output import METADATA_FILE, RECORD_FILE, write_metadata_csv, write_shards
from synthdata.sampling.writer import common_provenance, manifest_row, write_batches
from synthdata.tracking.mlflow_run import find_run, log_metrics, set_tags, stage_run
from synthdata.training.tensors import load_files, load_split
from synthdata.validation.coverage import ATTRIBUTES, attribute_gaps, attributes, bin_edges, cluster_coverage, diversity, histogram
from synthdata.validation.croissant import croissant, write_croissant
from synthdata.validation.domain import DomainClassifier, train_domain_classifier
from synthdata.validation.features import EffNetFeatures
from synthdata.validation.gates import GateResult, enforce, evaluate_gates
from synthdata.validation.lineage import check_lineage, is_duplicate, quantiles, source_distances, source_lists, within_source_diversity
from synthdata.validation.memorisation import nearest, pixel_vectors
from synthdata.validation.provenance_check import check_provenance
from synthdata.validation.realism import Figure, measure, standard_metrics

CHUNK = 1024
MAX_METRIC_SAMPLES = 5000
"""Realism is measured on at most this many images per side (a seeded subset)."""


@dataclass
class Real:
    """Real images (uint8, dataset format) with labels."""

    images: torch.Tensor
    labels: torch.Tensor
    ids: list[str] = field(default_factory=list)
    """Image ids in row order, where known (the train split)."""


@dataclass
class Judged:
    """Per-image judgments of generated images."""

    rows: pd.DataFrame
    """Manifest rows of the judged images (provenance included)."""
    confidence: np.ndarray
    predicted: np.ndarray
    pixel_distance: np.ndarray
    pixel_neighbour: np.ndarray
    feature_distance: np.ndarray
    domain_features: torch.Tensor
    attributes: dict[str, np.ndarray]
    source_pixel_distance: np.ndarray
    """Distance to the nearest of its own sources (NaN for a ``noise`` image), pixel RMS."""
    source_feature_distance: np.ndarray
    """The same in domain-feature space."""

    @property
    def derived(self) -> np.ndarray:
        """Images made from real sources (``img2img``, ``interpolate``)."""
        return np.isfinite(self.source_pixel_distance)


@dataclass
class ValidateResult:
    out: Path
    accepted: int
    quota: dict[str, int]
    dropped: dict[str, dict[str, int]]
    regenerated: int
    gates: list[GateResult]
    metrics: dict[str, Any]
    report: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def heldout_real(dataset: Path, pool: Path | None, size: int, channels: int) -> Real:
    """Real images the fine-tune never saw and that are not test images: the dataset's
    validation split, plus the train images of ``pool`` (the parent of a long-tailed set)
    that are not in the dataset's train split."""
    frame = read_manifest(dataset)
    used = set(frame.loc[frame["split"] == "train", "id"]) | set(frame.loc[frame["split"] == "test", "id"])
    parts: list[tuple[Path, pd.DataFrame]] = [(dataset, frame[frame["split"] == "val"])]
    if pool is not None:
        verified_pool = verify_dataset(pool)
        parent = verified_pool.frame
        if list(verified_pool.card.classes) != list(read_card(dataset).classes):
            raise DataError(f"{pool}: its classes differ from {dataset}'s; it cannot serve as held-out real data")
        parts.append((pool, parent[(parent["split"] == "train") & ~parent["id"].isin(used)]))
    images, labels = [], []
    for folder, rows in parts:
        if len(rows):
            images.append(load_files(folder, list(rows["relpath"]), size=size, channels=channels, description=f"load held-out {folder.name}"))
            labels.append(torch.tensor(rows["label"].to_numpy(), dtype=torch.int64))
    if not images:
        raise DataError(f"{dataset}: no held-out real images (no val split and no --pool); validation needs some")
    return Real(torch.cat(images), torch.cat(labels))


def _judge(folder: Path, rows: pd.DataFrame, card: DatasetCard, classifier: DomainClassifier, train_pixels: torch.Tensor,
           train_features: torch.Tensor, train_index: dict[str, int], size: int) -> Judged:  # fmt: skip
    """Stream ``rows``' images in chunks: probabilities, nearest fine-tuning images, distance to
    their own sources, attributes. The rows get a ``_folder`` column: where their files are."""
    parts: dict[str, list[Any]] = {k: [] for k in ("conf", "pred", "pd", "pn", "fd", "feat", "attr", "spd", "sfd")}
    labels = rows["label"].to_numpy()
    sources = source_lists(rows)
    for start in range(0, len(rows), CHUNK):
        chunk = rows.iloc[start : start + CHUNK]
        images = load_files(folder, list(chunk["relpath"]), size=size, channels=card.channels, description=f"judge {folder.name}")
        probabilities, features = classifier(images)
        parts["conf"].append(probabilities[torch.arange(len(chunk)), torch.tensor(labels[start : start + CHUNK])].numpy())
        parts["pred"].append(probabilities.argmax(dim=1).numpy())
        distance, neighbour = nearest(pixel_vectors(images), train_pixels)
        parts["pd"].append(distance.numpy())
        own = sources[start : start + CHUNK]
        parts["spd"].append(source_distances(pixel_vectors(images), own, train_pixels, train_index))
        parts["sfd"].append(source_distances(features, own, train_features, train_index))
        parts["pn"].append(neighbour.numpy())
        parts["fd"].append(nearest(features, train_features)[0].numpy())
        parts["feat"].append(features)
        parts["attr"].append(attributes(images))
    attrs = {name: np.concatenate([a[name] for a in parts["attr"]]) if parts["attr"] else np.empty(0) for name in ATTRIBUTES}
    cat = lambda key: np.concatenate(parts[key]) if parts[key] else np.empty(0)  # noqa: E731
    feats = torch.cat(parts["feat"]) if parts["feat"] else torch.empty(0, classifier.model.feature_dim, dtype=torch.float64)
    return Judged(rows.assign(_folder=str(folder)).reset_index(drop=True), cat("conf"), cat("pred"), cat("pd"), cat("pn").astype(int), cat("fd"),
                  feats, attrs, cat("spd"), cat("sfd"))  # fmt: skip


def _concat(parts: list[Judged]) -> Judged:
    return Judged(
        pd.concat([p.rows for p in parts], ignore_index=True),
        np.concatenate([p.confidence for p in parts]), np.concatenate([p.predicted for p in parts]),
        np.concatenate([p.pixel_distance for p in parts]), np.concatenate([p.pixel_neighbour for p in parts]),
        np.concatenate([p.feature_distance for p in parts]), torch.cat([p.domain_features for p in parts]),
        {k: np.concatenate([p.attributes[k] for p in parts]) for k in ATTRIBUTES},
        np.concatenate([p.source_pixel_distance for p in parts]), np.concatenate([p.source_feature_distance for p in parts]),
    )  # fmt: skip


def _reasons(judged: Judged, settings: ValidateSettings, thresholds: dict[str, float]) -> list[str]:
    """Why each image is dropped ('' when accepted); the first reason that applies."""
    rule = settings.filter
    labels = judged.rows["label"].to_numpy()
    out = []
    derived = judged.derived
    for i in range(len(labels)):
        near = judged.pixel_distance[i] < thresholds["pixel"] or judged.feature_distance[i] < thresholds["feature"]
        copy = is_duplicate(judged.source_pixel_distance[i], judged.source_feature_distance[i], thresholds)
        if not rule.enabled:
            out.append("")
        elif rule.drop_near_copies and derived[i] and copy:
            out.append("duplicate-of-source")
        elif rule.drop_near_copies and not derived[i] and near:
            out.append("near-copy")
        elif rule.drop_off_class and judged.predicted[i] != labels[i]:
            out.append("off-class")
        elif judged.confidence[i] < rule.min_confidence:
            out.append("low-confidence")
        else:
            out.append("")
    return out


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
    train_index = {identifier: i for i, identifier in enumerate(train_ids)}
    check_lineage(source_frame, set(train_index), str(synthetic))
    heldout = heldout_real(dataset, pool, size, channels)
    val_rows = verified.frame[verified.frame["split"] == "val"]
    torch.manual_seed(settings.seed)
    classifier = train_domain_classifier(train.images, train.labels, classes, settings.classifier)
    val_accuracy = classifier.per_class_accuracy(
        load_files(dataset, list(val_rows["relpath"]), size=size, channels=channels) if len(val_rows) else torch.empty(0),
        torch.tensor(val_rows["label"].to_numpy(), dtype=torch.int64),
    )
    train_pixels = pixel_vectors(train.images)
    train_features = classifier(train.images)[1]
    heldout_probs, heldout_features = classifier(heldout.images)
    # Real images' nearest-neighbour distances to the fine-tuning set: the scale every copy test is calibrated on.
    real_nearest = {"pixel": nearest(pixel_vectors(heldout.images), train_pixels)[0].double(),
                    "feature": nearest(heldout_features, train_features)[0].double()}  # fmt: skip
    thresholds = {space: float(torch.quantile(distances, settings.memorisation_quantile)) for space, distances in real_nearest.items()}
    build_key = sha256_bytes(json.dumps([manifest_hash(source_frame), asdict(settings), str(adapter)], sort_keys=True).encode())
    writer = DatasetWriter(out, build_key)
    params = {"validate": asdict(settings), "dataset": dataset.name, "synthetic": synthetic.name}
    run_id = sample_record["sample_run_id"]
    with stage_run("validate", recipe.name, params, resume_run_id=find_run("validate", recipe.name, build_key=build_key[:32]), output=out):
        import mlflow

        set_tags({"build_key": build_key[:32], "sample_run_id": run_id, "synthetic_manifest_sha256": manifest_hash(source_frame)})
        judged = _judge(synthetic, source_frame, card, classifier, train_pixels, train_features, train_index, size)
        reasons = _reasons(judged, settings, thresholds)
        accepted_mask = np.array([r == "" for r in reasons], dtype=bool)
        all_judged, all_reasons = [judged], list(reasons)
        regenerated = 0
        deficit = {c: q - int(((judged.rows["label_name"] == c).to_numpy() & accepted_mask).sum()) for c, q in quota.items()}
        if settings.filter.enabled and any(v > 0 for v in deficit.values()) and settings.filter.max_rounds:
            regenerated = _refill(recipe, adapter, dataset, card, size, classes, judged, accepted_mask, deficit, settings,
                                  thresholds, classifier, train_pixels, train_features, train_index, writer.staging,
                                  sample_record, all_judged, all_reasons)  # fmt: skip
        everything = _concat(all_judged)
        keep = np.array([r == "" for r in all_reasons], dtype=bool)
        # Keep at most the quota per class, in generation order (original images first).
        order = everything.rows.assign(_keep=keep, _pos=np.arange(len(keep)))
        chosen = []
        for name, q in quota.items():
            rows = order[(order["label_name"] == name) & order["_keep"]]
            chosen += list(rows["_pos"][:q])
        chosen = sorted(chosen)
        accepted = everything.rows.iloc[chosen]
        dropped = {c: {} for c in classes}
        for pos, reason in enumerate(all_reasons):
            if reason:
                name = everything.rows["label_name"].iloc[pos]
                dropped[name][reason] = dropped[name].get(reason, 0) + 1
        figures = _figures(settings, everything, chosen, heldout, heldout_features, train, classes, quota, thresholds, real_nearest)
        figures["lineage"]["mode"] = str(sample_record["settings"].get("mode", "noise"))
        figures["domain_classifier"] = {"val_accuracy": val_accuracy, "train_steps": classifier.log.steps}
        figures["filter"] = {"dropped": dropped, "regenerated": regenerated, "accepted": int(len(accepted)),
                             "thresholds": thresholds}  # fmt: skip
        gate_results = evaluate_gates(settings.gates, figures)
        figures["gates"] = [g.as_dict() for g in gate_results]
        figures["passed"] = all(g.passed for g in gate_results)
        if figures["passed"] and accepted.empty:
            figures["passed"] = False
        # The report reads every judged image, dropped replacements included: before publishing
        # removes those from the staging folder.
        paths = build_folder(report, lambda folder: _report(folder, recipe, classes, train, heldout, everything, chosen, figures, quota, real_nearest)) if report else []
        log_metrics(_flat_metrics(figures))  # before publishing: tracking takes the figures first
        if figures["passed"]:  # a set that fails a gate is never published where a trainer would find it
            _publish(writer, synthetic, accepted, card, sample_record, dropped, figures)
        if metrics_path is not None:
            paths.append(write_text(metrics_path, json.dumps(_jsonable(figures), indent=2) + "\n"))
        for path in paths:
            mlflow.log_artifact(str(path), artifact_path="validate")
        result = ValidateResult(out, len(accepted), quota, dropped, regenerated, gate_results, figures, paths, time.monotonic() - started)
    enforce(gate_results)
    if not result.accepted:
        raise DataError(f"{synthetic}: no image passed the filter (dropped: {json.dumps(dropped)}); nothing to publish")
    return result


def _refill(recipe: Recipe, adapter: Path, dataset: Path, card: DatasetCard, size: int, classes: list[str], judged: Judged,
            accepted_mask: np.ndarray, deficit: dict[str, int], settings: ValidateSettings, thresholds: dict[str, float],
            classifier: DomainClassifier, train_pixels: torch.Tensor, train_features: torch.Tensor, train_index: dict[str, int],
            staging: Path, sample_record: dict[str, Any], all_judged: list[Judged], all_reasons: list[str]) -> int:  # fmt: skip
    """Generate replacements for dropped images, round by round, into ``staging``."""
    from synthdata.config.recipe import SampleSettings
    from synthdata.config.strict import build
    from synthdata.sampling.model import attach_guide, load_sampling_model

    sample_settings = build(SampleSettings, sample_record["settings"], source=RECORD_FILE)
    model = attach_guide(load_sampling_model(adapter, recipe.finetune.base), sample_settings, dataset)
    run_id = sample_record["sample_run_id"]
    common = common_provenance(model, sample_settings, card, run_id)
    pool = anchor_pool(sample_settings.mode, model, dataset, classes)
    rows = judged.rows
    next_index = {c: int(rows.loc[rows["label_name"] == c, "sample_index"].max()) + 1 for c in deficit if (rows["label_name"] == c).any()}
    rate = {}
    for c in deficit:
        made = (rows["label_name"] == c).to_numpy()
        rate[c] = max(float(accepted_mask[made].mean()) if made.any() else 0.0, 0.1)
    regenerated = 0
    for _ in range(settings.filter.max_rounds):
        cap = settings.filter.max_refill
        wanted = {c: max(1, min(math.ceil(d / rate[c] * 1.2), math.ceil(cap * d))) for c, d in deficit.items() if d > 0}
        if not wanted:
            break
        items = anchored(more_items(classes, run_id, wanted, next_index), sample_settings, pool, run_id)
        write_batches(model, batches(items, sample_settings.batch_size), sample_settings, card, common, run_id, staging,
                      description=f"refill {recipe.name}", pool=pool)  # fmt: skip
        regenerated += len(items)
        new_rows = to_frame([manifest_row(item, card, common, run_id, staging) for item in items], synthetic=True)
        new_rows = new_rows.set_index("id").loc[[i.id for i in items]].reset_index()
        fresh = _judge(staging, new_rows, card, classifier, train_pixels, train_features, train_index, size)
        reasons = _reasons(fresh, settings, thresholds)
        all_judged.append(fresh)
        all_reasons.extend(reasons)
        for c, n in wanted.items():
            made = (fresh.rows["label_name"] == c).to_numpy()
            ok = int(sum(1 for i in np.flatnonzero(made) if reasons[i] == ""))
            rate[c] = max(ok / n, 0.05)
            deficit[c] = max(deficit[c] - ok, 0)
            next_index[c] = next_index.get(c, 0) + n
    return regenerated


def _figures(settings: ValidateSettings, everything: Judged, chosen: list[int], heldout: Real, heldout_features: torch.Tensor,
             train: Real, classes: list[str], quota: dict[str, int], thresholds: dict[str, float],
             real_nearest: dict[str, torch.Tensor]) -> dict[str, Any]:  # fmt: skip
    """Realism, coverage, diversity and memorisation figures of the accepted set."""
    generator = torch.Generator().manual_seed(settings.seed)
    accepted_labels = torch.as_tensor(everything.rows["label"].to_numpy()[chosen], dtype=torch.int64)
    accepted_domain = everything.domain_features[chosen]
    accepted_count = len(chosen)
    overall: dict[str, Figure] = {}
    if accepted_count >= 3:
        subset = torch.randperm(accepted_count, generator=generator)[:MAX_METRIC_SAMPLES]
        # measure() uses a reference and a floor sample of the synthetic count each: no more.
        pool = torch.randperm(len(heldout.images), generator=generator)[: 2 * len(subset)]
        if "domain" in settings.features:
            overall.update(measure(accepted_domain[subset], heldout_features[pool], standard_metrics("domain", k=settings.neighbours),
                                   resamples=settings.resamples, seed=settings.seed))  # fmt: skip
        if "effnet" in settings.features:
            effnet = EffNetFeatures()
            images = _load_subset(everything, [chosen[i] for i in subset.tolist()], heldout.images.shape[-1])
            overall.update(measure(effnet(images), effnet(heldout.images[pool]), standard_metrics("EffNet", k=settings.neighbours),
                                   resamples=settings.resamples, seed=settings.seed))  # fmt: skip
    per_class: dict[str, dict[str, Any]] = {}
    labels_all = everything.rows["label_name"].to_numpy()
    derived = everything.derived
    # Memorisation is asked of images made from noise; a derived image is judged against its own source.
    near = ~derived & ((everything.pixel_distance < thresholds["pixel"]) | (everything.feature_distance < thresholds["feature"]))
    duplicate = derived & is_duplicate(everything.source_pixel_distance, everything.source_feature_distance, thresholds)
    chosen_sources = source_lists(everything.rows.iloc[chosen])
    for label, name in enumerate(classes):
        if name not in quota:
            continue
        mine = accepted_domain[accepted_labels == label]
        real = heldout_features[heldout.labels == label]
        made = labels_all == name
        entry: dict[str, Any] = {
            "quota": quota[name],
            "accepted": int(len(mine)),
            "fill": len(mine) / quota[name],
            "generated": int(made.sum()),
            "near_copy_fraction": float(near[made & ~derived].mean()) if (made & ~derived).any() else float("nan"),
            "diversity_ratio": diversity(mine) / diversity(real) if len(mine) >= 2 and len(real) >= 2 else float("nan"),
            "real_heldout": int(len(real)),
        }
        if (made & derived).any():
            own = accepted_labels.numpy() == label
            entry.update({
                "duplicate_of_source_fraction": float(duplicate[made & derived].mean()),
                "source_pixel_distance": float(np.median(everything.source_pixel_distance[made & derived])),
                "source_feature_distance": float(np.median(everything.source_feature_distance[made & derived])),
                "sources_used": len({s for p, ids in zip(chosen, chosen_sources, strict=True) if labels_all[p] == name for s in ids}),
                "within_source_diversity_ratio": within_source_diversity(mine, [ids for ids, o in zip(chosen_sources, own, strict=True) if o], real),
            })  # fmt: skip
        if len(mine) >= 3 and len(real) >= 6:
            figures = measure(mine, real, standard_metrics("domain", k=min(settings.neighbours, 3)), resamples=settings.resamples, seed=settings.seed)
            entry.update({k: v.as_dict() for k, v in figures.items()})
        per_class[name] = entry
    real_attributes = attributes(heldout.images)
    train_attributes = attributes(train.images)
    chosen_attributes = {k: v[chosen] for k, v in everything.attributes.items()}
    gaps = attribute_gaps(real_attributes, chosen_attributes, heldout.labels.numpy(), accepted_labels.numpy(), classes)
    for name in ATTRIBUTES:  # fills are judged against the fine-tuning (train) images of each class
        edges = np.asarray(gaps[name]["edges"])
        for cls, entry in gaps[name]["classes"].items():
            label = classes.index(cls)
            train_share = histogram(train_attributes[name][train.labels.numpy() == label], edges)
            synthetic_share = np.asarray(entry["synthetic"])
            real_share = np.asarray(entry["real"])
            entry["train"] = train_share.round(4).tolist()
            entry["filled"] = [int(i) for i in np.flatnonzero((train_share < 0.1) & (real_share >= 0.1) & (synthetic_share >= 0.1))]
    clusters = cluster_coverage(heldout_features, accepted_domain, seed=settings.seed) if accepted_count else {}
    counts_before = {c: int((train.labels == i).sum()) for i, c in enumerate(classes)}
    counts_after = {c: counts_before[c] + int((accepted_labels == i).sum()) for i, c in enumerate(classes)}
    return {
        "overall": {k: v.as_dict() for k, v in overall.items()},
        "classes": per_class,
        "histogram": {"before": counts_before, "after": counts_after},
        "attributes": gaps,
        "clusters": clusters,
        "memorisation": {
            "thresholds": thresholds,
            "checked": int((~derived).sum()),
            "near_copies": int(near.sum()),
            "near_copy_fraction": float(near.sum() / max(int((~derived).sum()), 1)),
        },
        "lineage": {
            "derived": int(derived.sum()),
            "duplicates_of_source": int(duplicate.sum()),
            "distance_to_source": {"pixel": quantiles(everything.source_pixel_distance[derived]),
                                   "feature": quantiles(everything.source_feature_distance[derived])},
            "real_nearest_neighbour": {space: quantiles(d.numpy()) for space, d in real_nearest.items()},
            "thresholds": thresholds,
        },
    }


def _load_subset(judged: Judged, positions: list[int], size: int) -> torch.Tensor:
    """Images of judged rows by position (they live in the synthetic set or the staging folder)."""
    out = []
    for pos in positions:
        row = judged.rows.iloc[pos]
        out.append(load_files(row["_folder"], [row["relpath"]], size=size, channels=int(row["channels"]), description="load")[0])
    return torch.stack(out) if out else torch.empty(0)


def _publish(writer: DatasetWriter, synthetic: Path, accepted: pd.DataFrame, card: DatasetCard, sample_record: dict[str, Any],
             dropped: dict[str, dict[str, int]], figures: dict[str, Any]) -> None:  # fmt: skip
    """Copy the accepted originals beside the replacements (already staged), then publish."""
    staging = writer.staging
    for folder, relpath in zip(accepted["_folder"], accepted["relpath"], strict=True):
        target = staging / relpath
        if Path(folder) != staging and not target.is_file():
            write_bytes(target, (Path(folder) / relpath).read_bytes())
    frame = to_frame(accepted.drop(columns=["_folder"]).to_dict(orient="records"), synthetic=True)
    write_metadata_csv(frame, staging)
    keep = [METADATA_FILE]
    shard_size = int(sample_record["settings"].get("shard_size", 0))
    if shard_size:
        keep += [p.relative_to(staging).as_posix() for p in write_shards(frame, staging, shard_size, prefix="validated")]
    source = read_card(synthetic)
    counts = frame.groupby("label_name").size().to_dict()
    gaps = [
        f"{attribute} of {cls}: the accepted set leaves real-data bins {entry['gaps']} nearly empty"
        for attribute, data in figures["attributes"].items() for cls, entry in data["classes"].items() if entry["gaps"]
    ]  # fmt: skip
    validated = DatasetCard(
        name=writer.target.name, source=SYNTHETIC_SOURCE,
        description=f"Validated synthetic images for the train split of {card.name}: {len(frame)} accepted of "
                    f"{sum(sum(d.values()) for d in dropped.values()) + len(frame)} judged.",
        licence=source.licence, citation=source.citation, homepage=source.homepage, classes=list(card.classes),
        channels=card.channels, width=card.width, height=card.height, counts={"train": {k: int(v) for k, v in counts.items()}},
        manifest_sha256=manifest_hash(frame), split_protocol="synthetic: every image is in 'train'",
        derived_from={**(source.derived_from or {}), "synthetic_set": source.name, "synthetic_manifest_sha256": source.manifest_sha256,
                      "validation": {"dropped": dropped, "passed": figures["passed"]}},
        created_by=created_by(),
    )  # fmt: skip
    shards = [k for k in keep if k.startswith("shards/")]
    # The card declares the manifest file's own checksum: write it now (publish writes the same bytes).
    write_manifest(frame, staging)
    document = croissant(validated, card, manifest_file_sha256=file_sha256(staging / MANIFEST_FILE), shards=shards,
                         dropped=dropped, known_gaps=gaps[:20])  # fmt: skip
    write_croissant(staging, document)
    keep.append("croissant.json")
    writer.publish(frame, validated, {"validation.json": _jsonable({k: figures[k] for k in ("filter", "memorisation", "passed", "gates")})}, keep=tuple(keep))


def _report(folder: Path, recipe: Recipe, classes: list[str], train: Real, heldout: Real, everything: Judged,
            chosen: list[int], figures: dict[str, Any], quota: dict[str, int], real_nearest: dict[str, torch.Tensor]) -> list[Path]:  # fmt: skip
    folder = Path(folder)
    page = HtmlReport(f"{recipe.name}: validation of the synthetic set")
    verdict = "all gates passed" if figures["passed"] else "GATES FAILED"
    page.text(f"{figures['filter']['accepted']} images accepted for {sum(quota.values())} planned; "
              f"{figures['filter']['regenerated']} regenerated after filtering; {verdict}. Held-out real images: "
              f"{len(heldout.images)} (validation split and train images the fine-tune never saw; never the test split).")  # fmt: skip
    paths = []
    derived = bool(figures["lineage"]["derived"])
    page.heading("Real beside synthetic")
    grid = _real_vs_synthetic(folder / "real_vs_synthetic.png", classes, train, everything, chosen, quota)
    what = ("a row of the real train images the synthetic images below were made from (their sources)" if derived
            else "a row of real train images")  # fmt: skip
    page.image(grid, f"For each class: {what}, then a row of accepted synthetic images.")
    paths.append(grid)
    page.heading("Gates")
    gate_rows = [[g["gate"], g["metric"], g["scope"], g["value"], g["threshold"], "pass" if g["passed"] else "FAIL"] for g in figures["gates"]]
    page.table(["gate", "metric", "scope", "value", "threshold", ""], gate_rows,
               row_classes=["pass" if g["passed"] else "fail" for g in figures["gates"]])  # fmt: skip
    page.heading("Class histogram before and after")
    before, after = figures["histogram"]["before"], figures["histogram"]["after"]
    plot = class_balance(classes, [before[c] for c in classes], [after[c] - before[c] for c in classes], folder / "class_balance.png",
                         title=f"{recipe.name}: real train + accepted synthetic")  # fmt: skip
    page.image(plot, "Real train images (blue) and accepted synthetic images (orange) per class.")
    paths.append(plot)
    page.heading("Realism (accepted set against held-out real images)")
    page.text("Each figure beside its floor: the same metric between two disjoint real samples of the same size. "
              "FD/KID lower is better; precision, recall, density, coverage near the floor is real-like. "
              "These are not Inception FID/KID.")  # fmt: skip
    page.table(["metric", "value", "95% interval", "floor (real vs real)", "n"],
               [[k, v["value"], f"{v['ci95'][0]:.4g} – {v['ci95'][1]:.4g}", v["floor"], v["n"]] for k, v in figures["overall"].items()])  # fmt: skip
    page.heading("Per class")
    rows = []
    for name, e in figures["classes"].items():
        fd = e.get("FD-domain", {})
        prec = e.get("precision-domain", {})
        cov = e.get("coverage-domain", {})
        interval = f"{fd['ci95'][0]:.4g} – {fd['ci95'][1]:.4g}" if fd else "–"
        rows.append([name, e["quota"], e["accepted"], e["fill"], e["generated"], e["near_copy_fraction"], e["diversity_ratio"],
                     fd.get("value", float("nan")), interval, fd.get("floor", float("nan")), prec.get("value", float("nan")),
                     cov.get("value", float("nan")), figures["domain_classifier"]["val_accuracy"].get(name, float("nan"))])  # fmt: skip
    page.table(["class", "quota", "accepted", "fill", "generated", "near-copy share", "diversity ratio", "FD-domain", "95% interval", "floor",
                "precision", "coverage", "classifier val acc."], rows)  # fmt: skip
    page.heading("Dropped by the filter")
    dropped = figures["filter"]["dropped"]
    reasons = ["duplicate-of-source", "near-copy", "off-class", "low-confidence"]
    page.table(["class", *reasons], [[c, *[d.get(r, 0) for r in reasons]] for c, d in dropped.items() if c in quota])
    if derived:
        paths += _lineage_section(page, folder, figures, everything, quota, real_nearest)
    page.heading("Nearest fine-tuning neighbours (memorisation)")
    pairs = _worst_pairs(folder / "nearest_pairs.png", train, everything)
    page.text(f"Near-copy thresholds (1% of held-out real distances): pixel RMS {figures['memorisation']['thresholds']['pixel']:.4g}, "
              f"domain features {figures['memorisation']['thresholds']['feature']:.4g}; "
              f"{figures['memorisation']['near_copies']} of {figures['memorisation']['checked']} images made from noise under a "
              "threshold (images made from a real source are judged against that source above).")  # fmt: skip
    page.image(pairs, "Top: the generated images closest to a fine-tuning image (pixel space); bottom: that image.")
    paths.append(pairs)
    page.heading("Attribute coverage")
    accepted_attrs = {k: v[chosen] for k, v in everything.attributes.items()}
    real_attrs = attributes(heldout.images)
    edges = {a: bin_edges(real_attrs[a], 5) for a in ATTRIBUTES}
    plot = attribute_histograms({a: list(e) for a, e in edges.items()},
                                {a: histogram(real_attrs[a], edges[a]).tolist() for a in ATTRIBUTES},
                                {a: histogram(accepted_attrs[a], edges[a]).tolist() for a in ATTRIBUTES},
                                folder / "attributes.png", title=f"{recipe.name}: attribute bins, held-out real vs accepted synthetic")  # fmt: skip
    page.image(plot, "Share of images per attribute bin; bins are quintiles of the held-out real data.")
    paths.append(plot)
    gap_rows = [[a, c, str(e["gaps"]), str(e["filled"])] for a, d in figures["attributes"].items() for c, e in d["classes"].items() if e["gaps"] or e["filled"]]
    page.table(["attribute", "class", "gaps left (bins)", "bins filled where train is thin"], gap_rows or [["–", "–", "none", "none"]])
    clusters = figures.get("clusters") or {}
    if clusters:
        page.text(f"Feature clusters (k-means on held-out real domain features): missed clusters {clusters['missed']}, "
                  f"holding {clusters['missed_real_share']:.1%} of the real data.")  # fmt: skip
    paths.append(page.write(folder / "report.html"))
    return paths


def _real_vs_synthetic(path: Path, classes: list[str], train: Real, everything: Judged, chosen: list[int], quota: dict[str, int]) -> Path:
    """Two rows per class: real train images, then accepted synthetic ones. A derived image's
    real tile is its own source, straight above it."""
    tiles, labels = [], []
    chosen_rows = everything.rows.iloc[chosen]
    for label, name in enumerate(classes):
        if name not in quota:
            continue
        positions = [chosen[i] for i in np.flatnonzero(chosen_rows["label_name"].to_numpy() == name)[:8]]
        synth = _load_subset(everything, positions, train.images.shape[-1]) if positions else torch.empty(0, *train.images.shape[1:], dtype=torch.uint8)
        sources = [ids[0] for ids in source_lists(everything.rows.iloc[positions]) if ids]
        if positions and len(sources) == len(positions):
            real, title = _source_images(everything, positions, train), f"{name} source"
        else:
            real, title = train.images[train.labels == label][:8], f"{name} real"
        for row, title in ((real, title), (synth, f"{name} synth")):
            pad = torch.full((8 - len(row), *train.images.shape[1:]), 255, dtype=torch.uint8)
            tiles.append(torch.cat([row, pad]))
            labels.append(title)
    return save_grid(torch.cat(tiles), len(labels), path, labels=labels)


def _source_images(everything: Judged, positions: list[int], train: Real) -> torch.Tensor:
    """The first source of each judged row, from the train images (ids in load_split's order)."""
    index = {identifier: i for i, identifier in enumerate(train.ids)}
    return train.images[[index[ids[0]] for ids in source_lists(everything.rows.iloc[positions])]]


def _lineage_section(page: HtmlReport, folder: Path, figures: dict[str, Any], everything: Judged, quota: dict[str, int],
                     real_nearest: dict[str, torch.Tensor]) -> list[Path]:  # fmt: skip
    """Distance of each derived image to its own source against real nearest-neighbour distances,
    duplicates dropped, diversity within a source's variants."""
    lineage = figures["lineage"]
    page.heading("Distance to the source image")
    page.text(f"Mode {lineage['mode']}: {lineage['derived']} images made from real train images. Each is compared with its "
              "own source(s); one closer to it than the calibrated thresholds in both pixel and domain-feature space (the "
              "near-copy quantile of held-out real images' nearest-neighbour distances) adds nothing a copy would not and is "
              f"dropped: {lineage['duplicates_of_source']} were.")  # fmt: skip
    plot = source_distance_plot(everything.source_pixel_distance[everything.derived], everything.source_feature_distance[everything.derived],
                                {k: v.numpy() for k, v in real_nearest.items()}, lineage["thresholds"], folder / "source_distance.png")  # fmt: skip
    page.image(plot, "Distance of each derived image to its source (orange) and of held-out real images to their nearest train "
               "image (blue); the dashed line is the duplicate threshold.")  # fmt: skip
    rows = [[name, e.get("source_pixel_distance", float("nan")), e.get("source_feature_distance", float("nan")),
             e.get("duplicate_of_source_fraction", float("nan")), e.get("sources_used", 0),
             e.get("within_source_diversity_ratio", float("nan")), e["diversity_ratio"]]
            for name, e in figures["classes"].items() if name in quota]  # fmt: skip
    real = lineage["real_nearest_neighbour"]
    page.text(f"Held-out real images to their nearest train image: median pixel RMS {real['pixel']['median']:.4g}, "
              f"domain features {real['feature']['median']:.4g}.")  # fmt: skip
    page.table(["class", "median pixel distance to source", "median feature distance to source", "duplicate share",
                "sources used", "diversity within a source (vs real)", "diversity (vs real)"], rows)  # fmt: skip
    return [plot]


def _worst_pairs(path: Path, train: Real, everything: Judged, count: int = 12) -> Path:
    order = np.argsort(everything.pixel_distance)[:count]
    synthetic = _load_subset(everything, [int(i) for i in order], train.images.shape[-1])
    neighbours = train.images[torch.as_tensor(everything.pixel_neighbour[order])]
    return save_grid(torch.cat([synthetic, neighbours]), 2, path, labels=["synthetic", "nearest train"])


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _flat_metrics(figures: dict[str, Any]) -> dict[str, float]:
    flat = {}
    for name, figure in figures["overall"].items():
        flat[name] = figure["value"]
        flat[f"{name}.floor"] = figure["floor"]
    for cls, entry in figures["classes"].items():
        for key in ("fill", "near_copy_fraction", "diversity_ratio"):
            if entry[key] == entry[key]:
                flat[f"{cls}.{key}"] = entry[key]
    flat["accepted"] = figures["filter"]["accepted"]
    flat["regenerated"] = figures["filter"]["regenerated"]
    return {k: float(v) for k, v in flat.items()}
