"""Stage: one page per recipe that answers the user's question, and the end of the pipeline run.

Reads what the earlier stages wrote (``metrics/<recipe>/*-figures.json``, their every figure) and writes
``reports/<recipe>/index.html``: the utility headline (each arm's balanced accuracy and
rare-class recall with intervals, and whether synthetic data met the goal), realism against its
floors, the synthetic set's class balance and samples, the environment that made it, and links
to each stage's own report. It then closes the recipe's MLflow pipeline run with the headline
figures, so the run's parent holds the answer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthdata.downstream.metrics import HEADLINE
from synthdata.downstream.verdict import GOAL, headline_rows
from synthdata.errors import DataError
from synthdata.provenance import versions
from synthdata.reporting.html import HtmlReport
from synthdata.tracking.mlflow_run import finish_pipeline

REALISM = ("FD-EffNet", "FD-domain", "precision-domain", "recall-domain", "coverage-domain")


@dataclass
class ReportResult:
    path: Path
    headline: list[list[str]]
    goal: dict[str, Any]
    pipeline_run: str | None


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: missing; run the stage that writes it first") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def run_report(name: str, metrics: Path, reports: Path) -> ReportResult:
    """Write ``reports/index.html`` from the figures under ``metrics`` and ``reports``."""
    utility = _read(metrics / "utility-figures.json")
    validate = _read(metrics / "validate-figures.json")
    data = _read(metrics / "data-figures.json") if (metrics / "data-figures.json").is_file() else None
    page = HtmlReport(f"{name}: does the synthetic set help on the rare classes?")
    arms, goal = utility["arms"], utility["goal"]
    page.text(
        f"Downstream {utility['model']} at {utility['image_size']} px, {utility['steps']} optimizer steps x batch "
        f"{utility['batch_size']} for every arm, seeds {utility['seeds']}, scored on the untouched real test split "
        f"({utility['leak_check']['test_images']} images; no training image shares its pixels). "
        f"Rare classes: {', '.join(utility['rare_classes'])}. Intervals: 95% Student-t over seeds."
    )
    page.text("Budget: " + utility["budget"]["text"])
    mode = validate.get("lineage", {}).get("mode", "noise")
    page.heading("Real beside synthetic")
    _image(
        page,
        reports / "validate" / "real_vs_synthetic.png",
        "per class, a row of real train images above a row of accepted synthetic images"
        + (
            ""
            if mode == "noise"
            else f" (generation mode {mode}: each real image is the source of the synthetic one below it)"
        ),
    )
    _headline(page, utility, goal, reports)
    _realism(page, validate, mode, reports)
    _stage_links(page, reports)
    _how_it_was_made(page, data)
    path = page.write(reports / "index.html")
    flat = {f"{arm}.{m}": figures[m]["mean"] for arm, figures in arms.items() for m in HEADLINE}
    run_id = finish_pipeline(name, flat)
    return ReportResult(path, headline_rows(utility), goal, run_id)


def _headline(page: HtmlReport, utility: dict[str, Any], goal: dict[str, Any], reports: Path) -> None:
    """Each arm's headline figures, whether synthetic data met the goal, the verdict and its plots."""
    page.heading("Headline")
    page.table(
        ["arm", "balanced accuracy", "rare-third recall", "macro-F1"],
        headline_rows(utility),
        row_classes=["synth" if "synth" in row[0] else "" for row in headline_rows(utility)],
    )
    if goal.get("evaluated"):
        page.text(
            ("Goal met: " if goal["met"] else "Goal not met: ")
            + "; ".join(
                f"{m}: {goal[m]['best_synthetic']} vs {goal[m]['best_classical']} {goal[m]['gain']:+.3f} (wanted +{GOAL[m]:.2f}, "
                f"{_separation(goal[m])})"
                for m in GOAL
            )
        )
    else:
        page.text(f"Goal not evaluated: {goal.get('reason', 'no goal in the utility metrics')}.")
    page.bullets(utility["verdict"])
    _image(page, reports / "utility" / "arms.png", "balanced accuracy and rare-third recall per arm (95% intervals)")
    _image(
        page, reports / "utility" / "curves.png", "validation balanced accuracy during training, every arm and seed"
    )
    _image(page, reports / "utility" / "recall.png", "test recall per class and arm")


def _realism(page: HtmlReport, validate: dict[str, Any], mode: str, reports: Path) -> None:
    """The validated set's realism against its real-vs-real floors, the filter's counts, its plots."""
    page.heading("Realism of the validated set (held-out real, never the test split)")
    overall = validate["overall"]
    page.table(
        ["metric", "value", "95% interval", "floor (real vs real)", "n"],
        [
            [
                m,
                overall[m]["value"],
                f"[{overall[m]['ci95'][0]:.4g}, {overall[m]['ci95'][1]:.4g}]",
                overall[m]["floor"],
                overall[m]["n"],
            ]
            for m in REALISM
            if m in overall
        ],
    )
    accepted = validate["filter"]["accepted"]
    quota = sum(c["quota"] for c in validate["classes"].values())
    page.text(
        f"Accepted {accepted} of a quota of {quota} synthetic images "
        f"({validate['filter']['regenerated']} regenerated after the filter); gates {'passed' if validate['passed'] else 'failed'}; "
        f"generation mode {mode}; near-copies {validate['memorisation']['near_copies']}, "
        f"duplicates of their source {validate.get('lineage', {}).get('duplicates_of_source', 0)}."
    )
    _image(page, reports / "validate" / "class_balance.png", "class histogram before and after augmentation")
    _image(page, reports / "sample" / "samples.png", "samples per class, as generated")


def _stage_links(page: HtmlReport, reports: Path) -> None:
    """Links to the stages' own reports that exist, relative to ``reports``."""
    page.heading("Stage reports")
    links = [(stage, reports / stage / "report.html") for stage in ("validate", "utility")]
    links.append(("sample plan", reports / "sample" / "plan.md"))
    page.raw(
        "<ul>"
        + "".join(f'<li><a href="{os.path.relpath(p, reports)}">{s}</a></li>' for s, p in links if p.exists())
        + "</ul>"
    )


def _how_it_was_made(page: HtmlReport, data: dict[str, Any] | None) -> None:
    """Every version that made the run (``versions``), and the data stage's scalar figures if any."""
    page.heading("How it was made")
    record = versions()
    if data is not None:
        record.update({f"data.{k}": str(v) for k, v in data.items() if not isinstance(v, (dict, list))})
    page.table(["what", "value"], [[k, v] for k, v in record.items()])


def _separation(verdict: dict[str, Any]) -> str:
    """Whether the two arms' intervals separate, or why that cannot be said (e.g. one seed)."""
    if verdict["intervals_separate"] is None:
        return f"intervals {verdict.get('reason') or 'n/a'}"
    return "intervals separate" if verdict["intervals_separate"] else "intervals overlap"


def _image(page: HtmlReport, path: Path, caption: str) -> None:
    if path.is_file():
        page.image(path, caption)
