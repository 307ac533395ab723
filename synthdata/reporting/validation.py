"""The validation report: real beside synthetic, gates, realism, lineage, memorisation and
coverage, as one self-contained HTML page with its grids and plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from synthdata.reporting.grid import save_grid
from synthdata.reporting.html import HtmlReport
from synthdata.reporting.plots import attribute_histograms, class_balance, source_distance_plot
from synthdata.validation.assess import Assessment
from synthdata.validation.calibration import Calibration
from synthdata.validation.coverage import ATTRIBUTES, attributes, bin_edges, histogram
from synthdata.validation.figures import ValidationFigures
from synthdata.validation.filter import Judged, Real
from synthdata.validation.inputs import ValidationInputs
from synthdata.validation.lineage import source_lists


def validation_report(
    folder: Path, recipe: str, inputs: ValidationInputs, calibration: Calibration, assessed: Assessment
) -> list[Path]:
    """Write ``report.html``, with its grids and plots, into ``folder``; the paths written."""
    folder, figures, filtered = Path(folder), assessed.figures, assessed.filtered
    classes, quota, train, heldout = inputs.classes, inputs.quota, calibration.train, calibration.heldout
    everything, chosen = filtered.judged, filtered.chosen
    page = HtmlReport(f"{recipe}: validation of the synthetic set")
    _summary(page, figures, quota, heldout)
    paths = [_real_beside_synthetic_section(page, folder, figures, classes, train, everything, chosen, quota)]
    _gates_section(page, figures)
    paths.append(_class_balance_section(page, folder, recipe, classes, figures))
    _realism_section(page, figures)
    _per_class_section(page, figures)
    _dropped_section(page, figures, quota)
    if figures.lineage["derived"]:
        paths.append(_lineage_section(page, folder, figures, everything, quota, calibration.real_nearest))
    paths.append(_memorisation_section(page, folder, figures, train, everything))
    paths.append(_attribute_section(page, folder, recipe, figures, heldout, everything, chosen))
    paths.append(page.write(folder / "report.html"))
    return paths


def _summary(page: HtmlReport, figures: ValidationFigures, quota: dict[str, int], heldout: Real) -> None:
    verdict = "all gates passed" if figures.passed else "GATES FAILED"
    page.text(
        f"{figures.filter['accepted']} images accepted for {sum(quota.values())} planned; "
        f"{figures.filter['regenerated']} regenerated after filtering; {verdict}. Held-out real images: "
        f"{len(heldout.images)} (validation split and train images the fine-tune never saw; never the test split)."
    )


def _real_beside_synthetic_section(
    page: HtmlReport,
    folder: Path,
    figures: ValidationFigures,
    classes: list[str],
    train: Real,
    everything: Judged,
    chosen: list[int],
    quota: dict[str, int],
) -> Path:
    page.heading("Real beside synthetic")
    grid = _real_vs_synthetic(folder / "real_vs_synthetic.png", classes, train, everything, chosen, quota)
    what = (
        "a row of the real train images the synthetic images below were made from (their sources)"
        if figures.lineage["derived"]
        else "a row of real train images"
    )
    page.image(grid, f"For each class: {what}, then a row of accepted synthetic images.")
    return grid


def _gates_section(page: HtmlReport, figures: ValidationFigures) -> None:
    page.heading("Gates")
    gate_rows = [
        [g["gate"], g["metric"], g["scope"], g["value"], g["threshold"], "pass" if g["passed"] else "FAIL"]
        for g in figures.gates
    ]
    page.table(
        ["gate", "metric", "scope", "value", "threshold", ""],
        gate_rows,
        row_classes=["pass" if g["passed"] else "fail" for g in figures.gates],
    )


def _class_balance_section(
    page: HtmlReport, folder: Path, recipe: str, classes: list[str], figures: ValidationFigures
) -> Path:
    page.heading("Class histogram before and after")
    before, after = figures.histogram["before"], figures.histogram["after"]
    plot = class_balance(
        classes,
        [before[c] for c in classes],
        [after[c] - before[c] for c in classes],
        folder / "class_balance.png",
        title=f"{recipe}: real train + accepted synthetic",
    )
    page.image(plot, "Real train images (blue) and accepted synthetic images (orange) per class.")
    return plot


def _realism_section(page: HtmlReport, figures: ValidationFigures) -> None:
    page.heading("Realism (accepted set against held-out real images)")
    page.text(
        "Each figure beside its floor: the same metric between two disjoint real samples of the same size. "
        "FD/KID lower is better; precision, recall, density, coverage near the floor is real-like. "
        "These are not Inception FID/KID."
    )
    page.table(
        ["metric", "value", "95% interval", "floor (real vs real)", "n"],
        [
            [k, v["value"], f"{v['ci95'][0]:.4g} – {v['ci95'][1]:.4g}", v["floor"], v["n"]]
            for k, v in figures.overall.items()
        ],
    )


def _per_class_section(page: HtmlReport, figures: ValidationFigures) -> None:
    page.heading("Per class")
    rows = []
    for name, e in figures.classes.items():
        fd = e.get("FD-domain", {})
        prec = e.get("precision-domain", {})
        cov = e.get("coverage-domain", {})
        interval = f"{fd['ci95'][0]:.4g} – {fd['ci95'][1]:.4g}" if fd else "–"
        rows.append(
            [
                name,
                e["quota"],
                e["accepted"],
                e["fill"],
                e["generated"],
                e["near_copy_fraction"],
                e["diversity_ratio"],
                fd.get("value", float("nan")),
                interval,
                fd.get("floor", float("nan")),
                prec.get("value", float("nan")),
                cov.get("value", float("nan")),
                figures.domain_classifier["val_accuracy"].get(name, float("nan")),
            ]
        )
    page.table(
        [
            "class",
            "quota",
            "accepted",
            "fill",
            "generated",
            "near-copy share",
            "diversity ratio",
            "FD-domain",
            "95% interval",
            "floor",
            "precision",
            "coverage",
            "classifier val acc.",
        ],
        rows,
    )


def _dropped_section(page: HtmlReport, figures: ValidationFigures, quota: dict[str, int]) -> None:
    page.heading("Dropped by the filter")
    dropped = figures.filter["dropped"]
    reasons = ["duplicate-of-source", "near-copy", "off-class", "low-confidence"]
    page.table(["class", *reasons], [[c, *[d.get(r, 0) for r in reasons]] for c, d in dropped.items() if c in quota])


def _memorisation_section(
    page: HtmlReport, folder: Path, figures: ValidationFigures, train: Real, everything: Judged
) -> Path:
    page.heading("Nearest fine-tuning neighbours (memorisation)")
    pairs = _worst_pairs(folder / "nearest_pairs.png", train, everything)
    page.text(
        f"Near-copy thresholds (1% of held-out real distances): pixel RMS {figures.memorisation['thresholds']['pixel']:.4g}, "
        f"domain features {figures.memorisation['thresholds']['feature']:.4g}; "
        f"{figures.memorisation['near_copies']} of {figures.memorisation['checked']} images made from noise under a "
        "threshold (images made from a real source are judged against that source above)."
    )
    page.image(pairs, "Top: the generated images closest to a fine-tuning image (pixel space); bottom: that image.")
    return pairs


def _attribute_section(
    page: HtmlReport,
    folder: Path,
    recipe: str,
    figures: ValidationFigures,
    heldout: Real,
    everything: Judged,
    chosen: list[int],
) -> Path:
    """Attribute bins, held-out real against accepted synthetic; the gaps left and bins filled;
    the feature clusters the accepted set misses."""
    page.heading("Attribute coverage")
    accepted_attrs = {k: v[chosen] for k, v in everything.attributes.items()}
    real_attrs = attributes(heldout.images)
    edges = {a: bin_edges(real_attrs[a], 5) for a in ATTRIBUTES}
    plot = attribute_histograms(
        {a: list(e) for a, e in edges.items()},
        {a: histogram(real_attrs[a], edges[a]).tolist() for a in ATTRIBUTES},
        {a: histogram(accepted_attrs[a], edges[a]).tolist() for a in ATTRIBUTES},
        folder / "attributes.png",
        title=f"{recipe}: attribute bins, held-out real vs accepted synthetic",
    )
    page.image(plot, "Share of images per attribute bin; bins are quintiles of the held-out real data.")
    gap_rows = [
        [a, c, str(e["gaps"]), str(e["filled"])]
        for a, d in figures.attributes.items()
        for c, e in d["classes"].items()
        if e["gaps"] or e["filled"]
    ]
    page.table(
        ["attribute", "class", "gaps left (bins)", "bins filled where train is thin"],
        gap_rows or [["–", "–", "none", "none"]],
    )
    clusters = figures.clusters or {}
    if clusters:
        page.text(
            f"Feature clusters (k-means on held-out real domain features): missed clusters {clusters['missed']}, "
            f"holding {clusters['missed_real_share']:.1%} of the real data."
        )
    return plot


def _real_vs_synthetic(
    path: Path, classes: list[str], train: Real, everything: Judged, chosen: list[int], quota: dict[str, int]
) -> Path:
    """Two rows per class: real train images, then accepted synthetic ones. A derived image's
    real tile is its own source, straight above it."""
    tiles, labels = [], []
    chosen_rows = everything.rows.iloc[chosen]
    for label, name in enumerate(classes):
        if name not in quota:
            continue
        positions = [chosen[i] for i in np.flatnonzero(chosen_rows["label_name"].to_numpy() == name)[:8]]
        synth = (
            everything.load(positions, train.images.shape[-1])
            if positions
            else torch.empty(0, *train.images.shape[1:], dtype=torch.uint8)
        )
        sources = [ids[0] for ids in source_lists(everything.rows.iloc[positions]) if ids]
        if positions and len(sources) == len(positions):
            real, title = _source_images(everything, positions, train), f"{name} source"
        else:
            real, title = train.images[train.labels == label][:8], f"{name} real"
        for row, caption in ((real, title), (synth, f"{name} synth")):
            pad = torch.full((8 - len(row), *train.images.shape[1:]), 255, dtype=torch.uint8)
            tiles.append(torch.cat([row, pad]))
            labels.append(caption)
    return save_grid(torch.cat(tiles), len(labels), path, labels=labels)


def _source_images(everything: Judged, positions: list[int], train: Real) -> torch.Tensor:
    """The first source of each judged row, from the train images (ids in load_split's order)."""
    index = {identifier: i for i, identifier in enumerate(train.ids)}
    return train.images[[index[ids[0]] for ids in source_lists(everything.rows.iloc[positions])]]


def _lineage_section(
    page: HtmlReport,
    folder: Path,
    figures: ValidationFigures,
    everything: Judged,
    quota: dict[str, int],
    real_nearest: dict[str, torch.Tensor],
) -> Path:
    """Distance of each derived image to its own source against real nearest-neighbour distances,
    duplicates dropped, diversity within a source's variants."""
    lineage = figures.lineage
    page.heading("Distance to the source image")
    page.text(
        f"Mode {lineage['mode']}: {lineage['derived']} images made from real train images. Each is compared with its "
        "own source(s); one closer to it than the calibrated thresholds in both pixel and domain-feature space (the "
        "near-copy quantile of held-out real images' nearest-neighbour distances) adds nothing a copy would not and is "
        f"dropped: {lineage['duplicates_of_source']} were."
    )
    plot = source_distance_plot(
        everything.source_pixel_distance[everything.derived],
        everything.source_feature_distance[everything.derived],
        {k: v.numpy() for k, v in real_nearest.items()},
        lineage["thresholds"],
        folder / "source_distance.png",
    )
    page.image(
        plot,
        "Distance of each derived image to its source (orange) and of held-out real images to their nearest train "
        "image (blue); the dashed line is the duplicate threshold.",
    )
    _lineage_table(page, figures, quota)
    return plot


def _lineage_table(page: HtmlReport, figures: ValidationFigures, quota: dict[str, int]) -> None:
    """Per class: median distance of derived images to their source, duplicate share, sources
    used and diversity, after the real nearest-neighbour scale they are read against."""
    rows = [
        [
            name,
            e.get("source_pixel_distance", float("nan")),
            e.get("source_feature_distance", float("nan")),
            e.get("duplicate_of_source_fraction", float("nan")),
            e.get("sources_used", 0),
            e.get("within_source_diversity_ratio", float("nan")),
            e["diversity_ratio"],
        ]
        for name, e in figures.classes.items()
        if name in quota
    ]
    real = figures.lineage["real_nearest_neighbour"]
    page.text(
        f"Held-out real images to their nearest train image: median pixel RMS {real['pixel']['median']:.4g}, "
        f"domain features {real['feature']['median']:.4g}."
    )
    page.table(
        [
            "class",
            "median pixel distance to source",
            "median feature distance to source",
            "duplicate share",
            "sources used",
            "diversity within a source (vs real)",
            "diversity (vs real)",
        ],
        rows,
    )


def _worst_pairs(path: Path, train: Real, everything: Judged, count: int = 12) -> Path:
    order = np.argsort(everything.pixel_distance)[:count]
    synthetic = everything.load([int(i) for i in order], train.images.shape[-1])
    neighbours = train.images[torch.as_tensor(everything.pixel_neighbour[order])]
    return save_grid(torch.cat([synthetic, neighbours]), 2, path, labels=["synthetic", "nearest train"])
