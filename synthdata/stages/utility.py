"""Stage: does the synthetic set make a downstream model better on the rare classes?

Each arm (``synthdata.downstream.arms``) trains the same network (``utility.model``, at
``utility.image_size``) for the same number of optimizer steps, batch size and seeds, on the
long-tailed real train split with or without oversampling, domain augmentation, logit
adjustment, mixup / CutMix and synthetic images. The steps come from a rule
(``synthdata.downstream.budget``): by default where the real reference arm's validation accuracy
stops rising, so no arm wins by learning faster; the best classical arm also trains at twice
that. Each model is scored on the real *test* split, which nothing else in synthdata reads and
no choice here depends on. Before training, every training and validation image's pixels are
hashed and compared with every test image's: one match stops the stage.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from synthdata.atomic import build_folder
from synthdata.config.recipe import Recipe
from synthdata.downstream.figures import headline, metrics_file_text, tables, utility_figures
from synthdata.downstream.inputs import load_inputs
from synthdata.downstream.metrics import HEADLINE
from synthdata.downstream.runner import ArmRunner, ArmsResult, domain_augmentation, run_arms
from synthdata.downstream.settings import UtilitySettings
from synthdata.reporting.downstream import utility_report
from synthdata.reporting.stage_files import StageFiles
from synthdata.tracking.lineage import log_dataset, log_splits
from synthdata.tracking.mlflow_run import StageRun, stage_run


@dataclass
class UtilityResult:
    arms: dict[str, dict[str, Any]]
    runs: list[dict[str, Any]]
    metrics: dict[str, Any]
    paths: list[Path]
    seconds: float


def run_utility(
    recipe: Recipe,
    dataset: Path,
    *,
    synthetic: Path | None = None,
    scratch: Path | None = None,
    work: Path | None = None,
    files: StageFiles | None = None,
    report: Path | None = None,
    settings: UtilitySettings | None = None,
) -> UtilityResult:
    """Run every arm and seed; ``files`` takes the headline, every figure and the data plots."""
    settings = settings or recipe.utility
    started = time.monotonic()
    sets = {"adapted": synthetic, "scratch": scratch}
    inputs = load_inputs(dataset, settings, sets)
    domain = domain_augmentation(settings)
    work = work or (dataset.parent / f".{dataset.name}.utility.work")
    work.mkdir(parents=True, exist_ok=True)
    params = {
        "utility": asdict(settings),
        "dataset": dataset.name,
        "synthetic": {k: str(sets[k]) for k in inputs.synthetic},
    }
    with stage_run("utility", recipe.name, params, output=work) as run:
        log_splits(run, dataset)
        for folder in (sets[k] for k in inputs.synthetic):
            log_dataset(run, folder, "validated")
        runner = ArmRunner(
            settings,
            inputs.classes,
            inputs.real,
            inputs.val,
            inputs.test,
            inputs.synthetic,
            inputs.rare,
            work,
            inputs.size,
            domain,
        )
        outcome = run_arms(runner)
        metrics = utility_figures(outcome, inputs, settings)
        # tracking takes the figures before the report and the metrics file are published
        _track(run, metrics, outcome)
        paths = (
            build_folder(report, lambda folder: utility_report(folder, recipe.name, metrics, inputs.classes))
            if report
            else []
        )
        paths += (files or StageFiles()).write(headline(metrics), metrics_file_text(metrics), tables(metrics))
        for path in paths:
            run.log_artifact(path, "utility")
    return UtilityResult(metrics["arms"], outcome.runs, metrics, paths, time.monotonic() - started)


def _track(run: StageRun, metrics: dict[str, Any], outcome: ArmsResult) -> None:
    """Each arm's headline means, each run's seconds, the budget and the test pixels' hash."""
    for name, figures in metrics["arms"].items():
        run.log_metrics({f"{name}.{m}": figures[m]["mean"] for m in HEADLINE})
    run.log_metrics({f"{r['arm']}.seed{r['seed']}.seconds": r["log"]["seconds"] for r in outcome.runs})
    run.log_metrics({"budget.steps": outcome.budget.steps, "budget.epochs": outcome.budget.epochs})
    run.set_tags(
        {"test_pixels_sha256": metrics["leak_check"]["test_pixels_sha256"], "budget_rule": outcome.budget.rule}
    )
