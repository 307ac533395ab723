"""The ``synthdata`` command line. Thin: every command calls a stage or library function."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from synthdata import __version__
from synthdata.errors import SynthdataError
from synthdata.paths import guard_outputs, recipe_name

for _name, _value in (
    ("HF_HUB_OFFLINE", "1"),
    ("NO_ALBUMENTATIONS_UPDATE", "1"),
    ("DVC_NO_ANALYTICS", "1"),
    ("GX_ANALYTICS_ENABLED", "false"),
):
    os.environ.setdefault(_name, _value)

app = typer.Typer(help="Synthetic image data for rare classes, with evidence and provenance.", no_args_is_help=True)
data_app = typer.Typer(help="Real data: fetch, ingest, long-tail, validate.", no_args_is_help=True)
app.add_typer(data_app, name="data")
keys_app = typer.Typer(help="Signing keys for Content Credentials.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console(stderr=True)

T = TypeVar("T")

RecipeOption = Annotated[Path | None, typer.Option("--recipe", "-r", help="Recipe YAML (recipes/*.yaml).")]
DatasetsOption = Annotated[Path, typer.Option("--datasets", help="Folder that holds dataset folders.")]
MetricsOption = Annotated[
    Path | None, typer.Option(help="Write the headline here: the few numbers DVC compares (dvc metrics show).")
]
FiguresOption = Annotated[
    Path | None, typer.Option(help="Write every figure here as JSON (read by synthdata report).")
]
PlotsOption = Annotated[
    Path | None, typer.Option(help="Folder for the data plots, CSV tables that dvc plots diff overlays.")
]


def _recipe_for(name: str | None, recipe: Path | None):
    """The recipe from ``--recipe``, or a minimal one for a built-in source given by name."""
    from synthdata.config.recipe import DataSettings, Recipe, load_recipe

    if recipe is not None:
        return load_recipe(recipe)
    if name is None:
        raise SynthdataError("give a dataset NAME or --recipe")
    from synthdata.data.sources import builtin_source

    builtin_source(name)  # NAME must be a built-in source; anything else is refused, listing them
    return Recipe(name=name, domain="generic", data=DataSettings(source=name))


def _recipe_inputs(spec, recipe: Path | None) -> dict[str, Path | str | None]:
    """What every command given a recipe reads: the recipe file and the data it points to."""
    return {"--recipe": recipe, "data.path": spec.data.path, "data.labels": spec.data.labels}


def _options(**values: Any) -> dict[str, dict[str, Any] | None]:
    """``max_ratio=2.0`` -> ``{"--max-ratio": {"max_ratio": 2.0}}``: options that each set the field
    of their name (``None``: the option was not given)."""
    return {"--" + name.replace("_", "-"): None if value is None else {name: value} for name, value in values.items()}


def _overridden(settings: T, section: str, options: dict[str, dict[str, Any] | None]) -> T:
    """The recipe's ``section`` with what the command line gave: ``{"--option": {"dotted.field":
    value, ...}}``, ``None`` for an option not given. Built by the recipe's own strict builder
    from the fields the recipe gave and the options, so a bad value is the one-line error a
    recipe gets for it, naming the options and the key (and, for a choice, the allowed values
    of its type)."""
    from dataclasses import asdict

    from synthdata.settings import build

    given = {option: fields for option, fields in options.items() if fields is not None}
    if not given:
        return settings
    data = asdict(settings)
    for fields in given.values():
        for dotted, value in fields.items():
            *parents, name = dotted.split(".")
            node = data
            for parent in parents:
                node = node[parent]
            node[name] = value
    return build(type(settings), data, source=", ".join(given), where=section)


def _work_folder(out: Path) -> Path:
    """The default checkpoint folder of ``out``: ``<out>.work`` beside it. (``.`` and ``/`` have no
    name to extend; the output guard refuses them before their ``.work`` is used.)"""
    return out.parent / f"{out.name}.work"


@app.callback(invoke_without_command=True)
def _root(version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


@data_app.command("sources")
def sources() -> None:
    """List the built-in sources and their pinned files."""
    from synthdata.data.sources import BUILTIN, USER_FORMATS

    table = Table("source", "classes", "licence", "mirror files", "upstream files (no mirror)")
    for name, source in BUILTIN.items():
        table.add_row(
            name,
            str(len(source.info.classes or ())),
            source.info.licence,
            ", ".join(f.path for f in source.info.files),
            ", ".join(f.path for f in source.info.upstream) or "the mirror files, downloaded",
        )
    for name in USER_FORMATS:
        given = "data.path, data.labels" if name == "csv" else "data.path"
        table.add_row(name, "from the data", "from the recipe", given, given)
    Console().print(table)


@data_app.command("fetch")
def fetch(name: Annotated[str, typer.Argument(help="Built-in source name.")]) -> None:
    """Get a source's files (mirror or download) and verify their sha256."""
    from synthdata.data.sources import get_source

    for key, path in get_source(name).fetch().items():
        typer.echo(f"{key}\t{path}\tsha256 ok")


@data_app.command("ingest")
def ingest(
    name: Annotated[str | None, typer.Argument(help="Built-in source (or give --recipe).")] = None,
    recipe: RecipeOption = None,
    out: Annotated[Path | None, typer.Option(help="Dataset folder to write [datasets/<recipe name>].")] = None,
    datasets: DatasetsOption = Path("datasets"),
) -> None:
    """Fetch and ingest a dataset into a canonical folder (PNG + manifest.parquet + card)."""
    from synthdata.stages.ingest import run_ingest

    spec = _recipe_for(name, recipe)
    target = out or datasets / spec.name
    guard_outputs(_recipe_inputs(spec, recipe), folders={"--out": target})
    result = run_ingest(spec, target)
    typer.echo(f"{result.path}: {result.images} images, manifest sha256 {result.manifest_sha256}")


@data_app.command("export")
def export(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder to export (checked first).")],
    out: Annotated[Path, typer.Option(help="Folder to write: images/ and labels.csv.")],
) -> None:
    """Write a dataset folder as one image folder plus labels.csv (image, label, split, group):
    the layout the csv source reads, and what another tool or team expects."""
    from synthdata.data.export import export_table

    guard_outputs({"dataset": dataset}, folders={"--out": out})
    paths = export_table(dataset, out)
    typer.echo(f"{out}: {paths[-1].name} and {paths[0].name}/")


@data_app.command("longtail")
def longtail(
    name: Annotated[
        str | None, typer.Argument(help="Ingested dataset name under --datasets (or give --recipe).")
    ] = None,
    recipe: RecipeOption = None,
    imbalance: Annotated[float | None, typer.Option(help="rho: largest / smallest class [recipe or 100].")] = None,
    max_per_class: Annotated[int | None, typer.Option(help="n_max [recipe, else the largest feasible].")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the rare-class permutation [recipe or 0].")] = None,
    parent: Annotated[Path | None, typer.Option(help="Dataset folder to derive from [datasets/<name>].")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder to write [datasets/<name>-lt].")] = None,
    datasets: DatasetsOption = Path("datasets"),
) -> None:
    """Build a long-tailed variant of a dataset's train split (test copied whole)."""
    from synthdata.stages.longtail import run_longtail

    spec = _recipe_for(name, recipe)
    settings = _overridden(
        spec.longtail, "longtail", _options(imbalance=imbalance, max_per_class=max_per_class, seed=seed)
    )
    source, target = parent or datasets / spec.name, out or datasets / f"{spec.name}-lt"
    guard_outputs({**_recipe_inputs(spec, recipe), "--parent": source}, folders={"--out": target})
    plan = run_longtail(spec, settings, source, target)
    table = Table("rank", "class", "train images")
    for rank, cls in enumerate(plan.ranking):
        table.add_row(str(rank), cls, str(plan.targets[cls]))
    Console().print(table)


@data_app.command("validate")
def validate(
    folders: Annotated[list[Path], typer.Argument(help="Dataset folders to check.")],
    recipe: RecipeOption = None,
    metrics: MetricsOption = None,
    figures: FiguresOption = None,
) -> None:
    """Run the Great Expectations manifest suite and the file check; non-zero exit on failure."""
    from synthdata.config.recipe import load_recipe
    from synthdata.reporting.stage_files import StageFiles
    from synthdata.stages.validate_data import run_validate_data

    spec = load_recipe(recipe) if recipe else None
    inputs = _recipe_inputs(spec, recipe) if spec else {}
    guard_outputs({**inputs, "dataset folder": folders}, files={"--metrics": metrics, "--figures": figures})
    summary = run_validate_data(spec.name if spec else folders[0].name, folders, StageFiles(metrics, figures))
    for folder, row in summary.items():
        typer.echo(f"{folder}: {row['images']} images, {row['expectations']} expectations passed")


@app.command("pretrain")
def pretrain(
    recipe: Annotated[
        Path, typer.Option("--recipe", "-r", help="Recipe with a pretrain section (recipes/cifar10.yaml).")
    ],
    dataset: Annotated[Path, typer.Option(help="Ingested corpus folder (its train split is used).")],
    out: Annotated[Path, typer.Option(help="Base model folder to write.")],
    workdir: Annotated[Path | None, typer.Option(help="Checkpoints (resume from here) [<out>.work].")] = None,
    steps: Annotated[int | None, typer.Option(help="Override pretrain.train.steps.")] = None,
) -> None:
    """Pretrain a class-conditional diffusion base; resumes from the latest checkpoint."""
    from dataclasses import replace

    from synthdata.config.recipe import PretrainSettings, load_recipe
    from synthdata.stages.pretrain import run_pretrain

    spec = load_recipe(recipe)
    overrides = {"--steps": None if steps is None else {"train.steps": steps}}
    settings = _overridden(spec.pretrain or PretrainSettings(), "pretrain", overrides)
    spec = replace(spec, pretrain=settings)
    work = workdir or _work_folder(out)
    guard_outputs({**_recipe_inputs(spec, recipe), "--dataset": dataset}, folders={"--out": out, "--workdir": work})
    result = run_pretrain(spec, dataset, out, work)
    typer.echo(f"{out}: {result.steps} steps, {result.seconds:.0f} s, {result.images_per_second:.1f} img/s")


@app.command("base-card")
def base_card(
    base: Annotated[Path, typer.Option(help="Base model folder.")],
    corpus: Annotated[
        Path, typer.Option(help="The corpus folder it was trained on (its test split is the reference).")
    ],
    samples: Annotated[int, typer.Option(help="Generated images (and real images per side).")] = 2000,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale.")] = 2.0,
) -> None:
    """Measure a base's realism (FD-EffNet with its real-vs-real floor) and write its model card."""
    from synthdata.stages.base_card import write_card

    guard_outputs({"--corpus": corpus}, folders={"--base": base})
    realism = write_card(base, corpus, samples=samples, guidance=guidance)
    typer.echo(f"{base}: {realism['metric']} {realism['value']} (floor {realism['floor_real_vs_real']})")


@app.command("finetune")
def finetune(
    recipe: Annotated[Path, typer.Option("--recipe", "-r", help="Domain recipe (recipes/*.yaml).")],
    dataset: Annotated[Path, typer.Option(help="Dataset folder to adapt to (its train split).")],
    out: Annotated[Path, typer.Option(help="Adapter folder to write.")],
    workdir: Annotated[Path | None, typer.Option(help="Checkpoints (resume from here) [<out>.work].")] = None,
    mode: Annotated[str | None, typer.Option(help="Override finetune.adapter.mode: lora, full or scratch.")] = None,
    steps: Annotated[int | None, typer.Option(help="Override finetune.train.steps.")] = None,
    base: Annotated[Path | None, typer.Option(help="Override finetune.base (a base folder).")] = None,
    metrics: MetricsOption = None,
    plots: PlotsOption = None,
) -> None:
    """Adapt the base to a domain (LoRA by default); resumes from the latest checkpoint."""
    from dataclasses import replace

    from synthdata.config.recipe import load_recipe
    from synthdata.reporting.stage_files import StageFiles
    from synthdata.stages.finetune import run_finetune

    spec = load_recipe(recipe)
    overrides = {
        "--mode": None if mode is None else {"adapter.mode": mode},
        "--steps": None if steps is None else {"train.steps": steps},
        "--base": None if base is None else {"base": str(base)},
    }
    settings = _overridden(spec.finetune, "finetune", overrides)
    work = workdir or _work_folder(out)
    inputs = {
        **_recipe_inputs(spec, recipe),
        "--dataset": dataset,
        "--base" if base else "finetune.base": settings.base,
    }
    guard_outputs(inputs, folders={"--out": out, "--workdir": work, "--plots": plots}, files={"--metrics": metrics})
    files = StageFiles(metrics, plots=plots)
    result, model = run_finetune(replace(spec, finetune=settings), dataset, out, work, files=files)
    typer.echo(
        f"{out}: {model.mode}, {result.steps} steps, {result.seconds:.0f} s, {result.images_per_second:.1f} img/s"
    )


@app.command("sample")
def sample(
    recipe: Annotated[Path, typer.Option("--recipe", "-r", help="Domain recipe (its sample section).")],
    dataset: Annotated[Path, typer.Option(help="Dataset folder whose train split is balanced.")],
    adapter: Annotated[Path | None, typer.Option(help="Adapter folder (from synthdata finetune).")] = None,
    out: Annotated[Path | None, typer.Option(help="Synthetic set folder to write.")] = None,
    report: Annotated[Path | None, typer.Option(help="Folder for the plan, class histogram and grids.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and stop.")] = False,
    policy: Annotated[str | None, typer.Option(help="Override sample.policy: to-max, to-target or share.")] = None,
    target: Annotated[int | None, typer.Option(help="Override sample.target (to-target).")] = None,
    share: Annotated[float | None, typer.Option(help="Override sample.share (share).")] = None,
    max_ratio: Annotated[float | None, typer.Option(help="Override sample.max_ratio (synthetic:real cap).")] = None,
    max_images: Annotated[
        int | None, typer.Option(help="Override sample.max_images (budget on synthetic images in all).")
    ] = None,
    mode: Annotated[str | None, typer.Option(help="Override sample.mode: noise, img2img or interpolate.")] = None,
    strength: Annotated[
        float | None, typer.Option(help="Override sample.strength (0-1; img2img and interpolate).")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Override sample.scheduler: dpm-solver++, ddim or ddpm.")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Override sample.steps.")] = None,
    guidance: Annotated[float | None, typer.Option(help="Override sample.guidance.")] = None,
    classifier_guidance: Annotated[
        float | None, typer.Option(help="Override sample.classifier_guidance (0: off).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Override sample.batch_size.")] = None,
    shard_size: Annotated[
        int | None, typer.Option(help="Override sample.shard_size (0: no WebDataset shards).")
    ] = None,
) -> None:
    """Generate a class-balanced synthetic set with provenance on every image; resumes after a
    kill. Under ``accelerate launch`` the batches are shared between the processes."""
    from synthdata.config.recipe import load_recipe
    from synthdata.stages.sample import run_sample

    spec = load_recipe(recipe)
    plan = _options(policy=policy, target=target, share=share, max_ratio=max_ratio, max_images=max_images)
    run = _options(scheduler=scheduler, steps=steps, guidance=guidance, batch_size=batch_size, shard_size=shard_size)
    steering = _options(mode=mode, strength=strength, classifier_guidance=classifier_guidance)
    settings = _overridden(spec.sample, "sample", plan | run | steering)
    if not dry_run and (adapter is None or out is None):
        raise SynthdataError("--adapter and --out are required (or give --dry-run)")
    inputs = {
        **_recipe_inputs(spec, recipe),
        "--dataset": dataset,
        "--adapter": adapter,
        "finetune.base": spec.finetune.base,
    }
    guard_outputs(inputs, folders={"--out": out, "--report": report})
    result = run_sample(spec, adapter, dataset, out, report=report, settings=settings, dry_run=dry_run)
    if result.main:  # the helper processes of a multi-process run print nothing
        _show_sample(spec.name, settings, result, out, dry_run)


def _show_sample(name: str, settings: Any, result: Any, out: Path | None, dry_run: bool) -> None:
    """The plan's table (on a dry run, or once the set is written) and the written set's line."""
    if dry_run or result.out is not None:
        budget = "" if settings.max_images is None else f", budget {settings.max_images}"
        Console().print(_plan_table(f"{name}: {settings.policy}, cap {settings.max_ratio:g}:1{budget}", result.plan))
    if not dry_run and result.out is not None:
        typer.echo(
            f"{out}: {result.images} images ({result.generated} made now), {result.seconds:.0f} s, run {result.run_id}"
        )


def _plan_table(title: str, plan: Any) -> Table:
    """A quota plan (:class:`synthdata.sampling.quotas.QuotaPlan`) class by class, each capped or
    budgeted quota marked, and its total."""
    table = Table("class", "real", "wanted", "cap", "synthetic", "total", title=title)
    for row in plan.rows():
        mark = " (budget)" if row["budgeted"] else " (capped)" if row["capped"] else ""
        table.add_row(
            str(row["class"]),
            str(row["real"]),
            str(row["wanted"]),
            str(row["cap"]),
            f"{row['synthetic']}{mark}",
            str(row["total"]),
        )
    table.add_row("total", "", "", "", str(plan.synthetic), "")
    return table


def _headline_table(title: str, rows: list[list[str]]) -> Table:
    """The headline figures of each arm (balanced accuracy, rare-third recall, macro-F1)."""
    table = Table("arm", "balanced accuracy", "rare-third recall", "macro-F1", title=title)
    for row in rows:
        table.add_row(*row)
    return table


def _report_note(report: Path | None) -> str:
    """Where a command's report went, for its last line ("" without one)."""
    return f"; report {report / 'report.html'}" if report else ""


@app.command("validate")
def validate_synthetic(
    recipe: Annotated[Path, typer.Option("--recipe", "-r", help="Domain recipe (its validate section).")],
    dataset: Annotated[Path, typer.Option(help="The real dataset the synthetic set augments (its train split).")],
    synthetic: Annotated[Path, typer.Option(help="Synthetic set folder (from synthdata sample).")],
    adapter: Annotated[Path, typer.Option(help="The adapter that made it (provenance check, replacements).")],
    out: Annotated[Path, typer.Option(help="Folder for the accepted set.")],
    pool: Annotated[
        Path | None, typer.Option(help="Parent dataset whose unused train images serve as held-out real data.")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Folder for report.html and its figures.")] = None,
    metrics: MetricsOption = None,
    figures: FiguresOption = None,
    plots: PlotsOption = None,
) -> None:
    """Check provenance, filter and refill, measure realism, coverage and memorisation against
    held-out real images, apply the recipe's gates; non-zero exit when a gate fails."""
    from synthdata.config.recipe import load_recipe
    from synthdata.reporting.stage_files import StageFiles
    from synthdata.stages.validate import run_validate

    spec = load_recipe(recipe)
    inputs = {
        **_recipe_inputs(spec, recipe),
        "--dataset": dataset,
        "--synthetic": synthetic,
        "--adapter": adapter,
        "--pool": pool,
        "finetune.base": spec.finetune.base,
    }
    guard_outputs(
        inputs,
        folders={"--out": out, "--report": report, "--plots": plots},
        files={"--metrics": metrics, "--figures": figures},
    )
    files = StageFiles(metrics, figures, plots)
    result = run_validate(spec, dataset, synthetic, adapter, out, pool=pool, report=report, files=files)
    table = Table("class", "quota", "accepted", "dropped", "fill", title=f"{spec.name}: validated synthetic set")
    for name, entry in result.metrics.classes.items():
        table.add_row(
            name,
            str(entry["quota"]),
            str(entry["accepted"]),
            str(sum(result.dropped[name].values())),
            f"{entry['fill']:.2f}",
        )
    Console().print(table)
    typer.echo(
        f"{out}: {result.accepted} images accepted, {result.regenerated} regenerated, {result.seconds:.0f} s"
        + _report_note(report)
    )


@app.command("utility")
def utility(
    recipe: Annotated[Path, typer.Option("--recipe", "-r", help="Domain recipe (its utility section).")],
    dataset: Annotated[
        Path, typer.Option(help="The long-tailed real dataset: its train split trains, its test split scores.")
    ],
    synthetic: Annotated[
        Path | None, typer.Option(help="Validated synthetic set (from synthdata validate) for the synth arms.")
    ] = None,
    scratch: Annotated[
        Path | None, typer.Option(help="Validated set from a model trained from scratch (real+synth-scratch arm).")
    ] = None,
    work: Annotated[Path | None, typer.Option(help="Folder for finished runs (a rerun skips them).")] = None,
    report: Annotated[Path | None, typer.Option(help="Folder for report.html and its figures.")] = None,
    metrics: MetricsOption = None,
    figures: FiguresOption = None,
    plots: PlotsOption = None,
    seeds: Annotated[str | None, typer.Option(help="Override utility.seeds, e.g. 0,1,2.")] = None,
    steps: Annotated[
        int | None, typer.Option(help="A hand-picked budget: utility.budget.rule steps with these steps.")
    ] = None,
    epochs: Annotated[
        float | None, typer.Option(help="utility.budget.rule epochs with these epochs of the real train split.")
    ] = None,
    arms: Annotated[str | None, typer.Option(help="Override utility.arms, comma-separated.")] = None,
) -> None:
    """Train a downstream classifier per arm and seed at equal steps (by the recipe's budget rule); score each on the real test split."""
    from synthdata.config.recipe import load_recipe
    from synthdata.downstream.verdict import headline_rows
    from synthdata.reporting.stage_files import StageFiles
    from synthdata.stages.utility import run_utility

    spec = load_recipe(recipe)
    settings = _utility_settings(spec.utility, seeds, arms, steps, epochs)
    inputs = {**_recipe_inputs(spec, recipe), "--dataset": dataset, "--synthetic": synthetic, "--scratch": scratch}
    guard_outputs(
        inputs,
        folders={"--work": work, "--report": report, "--plots": plots},
        files={"--metrics": metrics, "--figures": figures},
    )
    result = run_utility(
        spec,
        dataset,
        synthetic=synthetic,
        scratch=scratch,
        work=work,
        files=StageFiles(metrics, figures, plots),
        report=report,
        settings=settings,
    )
    Console().print(_headline_table(f"{spec.name}: test split, mean [95% interval]", headline_rows(result.metrics)))
    typer.echo(f"{len(result.runs)} runs, {result.seconds:.0f} s" + _report_note(report))


def _utility_settings(
    settings: Any, seeds: str | None, arms: str | None, steps: int | None, epochs: float | None
) -> Any:
    """The recipe's utility section with the command line's overrides; a bad one is one
    ``bad override`` line."""
    max_epochs = settings.budget.max_epochs
    try:
        overrides = {
            "--seeds": None if seeds is None else {"seeds": [int(s) for s in seeds.split(",")]},
            "--arms": None if arms is None else {"arms": arms.split(",")},
            "--steps": None if steps is None else {"classifier.steps": steps, "budget.rule": "steps"},
            "--epochs": None
            if epochs is None
            else {"budget.rule": "epochs", "budget.epochs": epochs, "budget.max_epochs": max(epochs, max_epochs)},
        }
        return _overridden(settings, "utility", overrides)
    except (ValueError, SynthdataError) as exc:
        raise SynthdataError(f"bad override: {exc}") from None


@app.command("plots")
def plots(
    revisions: Annotated[
        list[str] | None,
        typer.Argument(help="Commits, branches, tags or experiments to compare [the workspace against HEAD]."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the page (index.html) and its images.")] = Path("dvc_plots"),
) -> None:
    """dvc plots diff, drawn offline: every data plot of the pipeline overlaid across the revisions
    given, and the image plots side by side, on a page that needs no internet."""
    from synthdata.reporting.dvc_plots import plots_diff

    guard_outputs({"dvc.yaml": Path("dvc.yaml")}, folders={"--out": out})
    page = plots_diff(list(revisions or []), out)
    typer.echo(f"{page}: open it in a browser")


@app.command("report")
def report(
    name: Annotated[str, typer.Argument(help="Recipe name (reads metrics/NAME and reports/NAME).")],
    metrics: Annotated[
        Path | None, typer.Option(help="Folder of the stages' JSON figures (default metrics/NAME).")
    ] = None,
    reports: Annotated[Path | None, typer.Option(help="Folder of the stages' reports (default reports/NAME).")] = None,
) -> None:
    """Write reports/NAME/index.html, close the MLflow pipeline run, print the headline table."""
    from synthdata.stages.report import run_report

    recipe_name(name, "report NAME")  # it names folders and is quoted in MLflow's run filters
    metrics, reports = metrics or Path("metrics") / name, reports or Path("reports") / name
    guard_outputs({"--metrics": metrics}, files={"--reports": reports / "index.html"})
    result = run_report(name, metrics, reports)
    Console().print(_headline_table(f"{name}: real test split, mean [95% interval over seeds]", result.headline))
    goal = result.goal
    if goal.get("evaluated"):
        typer.echo(
            "synthetic vs best classical arm: "
            + "; ".join(
                f"{m} {goal[m]['gain']:+.3f} ({'met' if goal[m]['met'] else 'not met'})"
                for m in ("balanced_accuracy", "rare_third_recall")
            )
        )
    typer.echo(f"report: {result.path}")


@app.command("benchmark")
def benchmark(
    recipes: Annotated[
        str, typer.Option(help="Comma-separated recipe names.")
    ] = "pbc,eurosat,gtsrb,pneumoniamnist,breastmnist",
    preset: Annotated[
        str, typer.Option(help="cpu (recipes as written) or gpu (benchmarks/presets/gpu.yaml merged in).")
    ] = "cpu",
    ablation: Annotated[
        str,
        typer.Option(
            help="Recipes that also train from scratch for the real+synth-scratch arm: all, none, or comma-separated names."
        ),
    ] = "all",
    anchor: Annotated[bool, typer.Option(help="Also run the MedMNIST sanity anchor.")] = True,
    repo: Annotated[Path, typer.Option(help="Repository root (dvc.yaml, recipes/, benchmarks/).")] = Path("."),
) -> None:
    """Run every domain recipe end to end and write benchmarks/RESULTS.md and benchmarks/results.json."""
    from synthdata.benchmark import run_benchmark

    names = [recipe_name(n, "--recipes") for n in recipes.split(",") if n]
    ablated = {"all": True, "none": False}.get(ablation, [n for n in ablation.split(",") if n])
    path = run_benchmark(
        repo, names, preset=preset, ablation=ablated, anchor=anchor, log=lambda line: console.print(line)
    )
    typer.echo(path.read_text())
    typer.echo(f"written: {path} and {path.with_name('results.json')}")


@keys_app.command("init")
def keys_init(
    out: Annotated[Path, typer.Option(help="Folder to write ca.pem, signer-chain.pem, signer-key.pem.")],
) -> None:
    """Make a local test CA and an ES256 signer for trying Content Credentials. Untrusted outside
    the team: only a verifier given this ca.pem (--trust) accepts what it signs."""
    from synthdata.credentials.keys import init_keys

    files = init_keys(out)
    typer.echo(f"{files.key} (private, mode 0600)\n{files.cert_chain}\n{files.ca} (give to: synthdata verify --trust)")


@app.command("verify")
def verify(
    path: Annotated[
        Path,
        typer.Argument(help="A signed PNG, a synthetic set folder (manifest.parquet) or a WebDataset shard (.tar)."),
    ],
    trust: Annotated[Path | None, typer.Option(help="PEM trust anchors: the signer must chain to one.")] = None,
    dataset: Annotated[
        Path | None,
        typer.Option(help="The real dataset the set was made from (default: datasets/<name the card gives>)."),
    ] = None,
) -> None:
    """Check Content Credentials: signature, hash binding, issuer (with --trust); for a set folder
    also the signed manifest, that every manifest row, credential and file agree, and that each
    real source exists in the dataset; for a shard, each image against the row stored beside it.
    Any failure: one line naming the file, exit 1."""
    from synthdata.credentials.verify import verify_file, verify_folder, verify_shard

    if path.is_dir() or path.suffix == ".tar":
        summary = verify_folder(path, trust, dataset) if path.is_dir() else verify_shard(path, trust)
        for line in _verify_lines(summary):
            typer.echo(line)
        return
    found = verify_file(path, trust)
    issuer = "trusted" if found.trusted else "issuer not checked (no --trust)"
    typer.echo(f"{path}: verified ({'embedded' if found.embedded else 'sidecar'}), {issuer}, signer {found.signer}")
    typer.echo(
        f"  {found.digital_source_type}, seed {found.generation.get('seed')}, sources {sorted(found.sources) or 'none'}"
    )
    if found.review is not None:
        typer.echo(
            f"  review: {found.review['decision']} by {found.review['reviewer']} ({found.review['reviewed_at']})"
        )


def _verify_lines(summary: Any) -> list[str]:
    """The one-screen summary of a verified set folder or shard."""
    per_image = summary.embedded + summary.sidecars
    how = (
        f"{summary.embedded} embedded, {summary.sidecars} sidecar (.c2pa)"
        if per_image
        else f"none per image: {summary.hashed_only} checked by sha256 against the signed manifest"
    )
    made = ", ".join(f"{count} {kind}" for kind, count in sorted(summary.source_types.items()))
    lines = [
        f"{summary.folder}: all {summary.images} images verified",
        f"  credentials  {how}",
        f"  manifest     {'manifest.c2pa signed, binds manifest.parquet and the card' if summary.sealed else 'not signed'}"
        if summary.folder.is_dir()
        else "  manifest     each image's row (<key>.json) agrees with its credential",
        f"  signer       {'; '.join(summary.signers) or '-'}",
        f"  issuer       {'chains to the --trust anchors' if summary.trusted else 'not checked (give --trust ca.pem)'}",
        f"  made         {made}",
    ]
    if summary.folder.is_dir():
        lines.append(
            f"  lineage      {len(summary.source_hashes)} real source images found in {summary.lineage} (train split, same sha256)"
            if summary.lineage
            else "  lineage      not checked (give --dataset)"
        )
    if summary.reviewed:
        decisions = ", ".join(f"{n} {d}" for d, n in sorted(summary.reviewed.items()))
        lines.append(f"  review       {decisions}; by {', '.join(summary.reviewers)}")
    return lines


@app.command("review")
def review(
    set_folder: Annotated[Path, typer.Argument(metavar="SET", help="A synthetic set folder (validated/NAME).")],
    apply: Annotated[
        Path | None, typer.Option("--apply", help="Decisions JSON exported from the page: publish the reviewed set.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="The page (default reports/NAME/review.html) or, with --apply, the new set (default SET-reviewed)."
        ),
    ] = None,
    dataset: Annotated[
        Path | None, typer.Option(help="The real dataset (default: datasets/<name the card gives>).")
    ] = None,
    real: Annotated[int, typer.Option(min=0, max=64, help="Real train images shown per class.")] = 8,
    recipe: RecipeOption = None,
    key: Annotated[Path | None, typer.Option(help="Signing key (PEM) for a signed set; else the recipe's.")] = None,
    cert_chain: Annotated[Path | None, typer.Option(help="Its certificate chain (PEM).")] = None,
) -> None:
    """A person's review: write a self-contained HTML page to accept / reject / skip each
    synthetic image beside real ones (keyboard; exports decisions JSON with the reviewer's name);
    with --apply, publish a new version of the set without the rejected images, each decision on
    its manifest row and in its credential, logged to MLflow."""
    from synthdata.config.recipe import SigningSettings, load_recipe
    from synthdata.review.page import dataset_of
    from synthdata.stages.review import run_review_apply, run_review_page

    if not set_folder.is_dir():
        raise SynthdataError(f"{set_folder}: no such set folder")
    if apply is None:
        real_data = dataset_of(set_folder, dataset)
        page = out or Path("reports") / set_folder.name / "review.html"
        guard_outputs({"SET": set_folder, "--dataset": real_data}, files={"--out": page})
        result = run_review_page(set_folder, real_data, page, real_per_class=real)
        typer.echo(
            f"{result.path}: {result.images} synthetic images of {result.classes} classes beside {result.real} real "
            f"train images; open it in a browser, press A / R / S, then E to export the decisions"
        )
        return
    signing = load_recipe(recipe).provenance.signing if recipe is not None else SigningSettings()
    if key is not None or cert_chain is not None:
        signing = _overridden_signing(key, cert_chain)
    target = out or set_folder.with_name(f"{set_folder.name}-reviewed")
    result = run_review_apply(set_folder, apply, target, signing)
    counts = ", ".join(f"{n} {d}" for d, n in result.counts.items())
    typer.echo(f"{target}: {result.images} images ({counts}) reviewed by {result.decisions.reviewer}")
    typer.echo(f"  signed by {result.signer}" if result.signer else "  unsigned (the set reviewed was unsigned)")


def _overridden_signing(key: Path | None, cert_chain: Path | None) -> Any:
    from synthdata.config.recipe import SigningSettings

    try:
        return SigningSettings(key=str(key) if key else None, cert_chain=str(cert_chain) if cert_chain else None)
    except ValueError as exc:
        raise SynthdataError(f"--key/--cert-chain: {exc}") from None


@app.command("recipe")
def check_recipe(paths: Annotated[list[Path], typer.Argument(help="Recipe files to check.")]) -> None:
    """Load recipes and report the first problem in each (unknown keys, wrong types), and the
    sections a recipe must still name, if only as {}, to run under `dvc repro`."""
    from synthdata.config.recipe import load_recipe, missing_pipeline_sections

    for path in paths:
        spec = load_recipe(path)
        typer.echo(f"{path}: ok ({spec.name}, {spec.domain}, source {spec.data.source})")
        missing = missing_pipeline_sections(path)
        if missing:
            typer.echo(
                f"  for dvc repro, also name: {', '.join(f'{m}: {{}}' for m in missing)} "
                "(dvc.yaml tracks these sections; {} takes the defaults)"
            )


def main() -> None:
    """Entry point: a :class:`SynthdataError` or an ``OSError`` becomes one line on stderr and exit
    code 1; Ctrl-C (SIGINT) anywhere becomes one ``interrupted`` line and exit code 130."""
    try:
        app()
    except SynthdataError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except OSError as exc:  # disk full, permission denied, read-only file system: the system's words
        where = f": {exc.filename}" if exc.filename else ""
        console.print(f"[bold red]error:[/] {exc.strerror or exc}{where}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except SystemExit as exc:
        # Typer turns a KeyboardInterrupt inside a command into a silent exit 130; no command
        # exits 130 of its own accord, so this is the interrupt to report.
        if exc.code == 130:
            _interrupted()
        raise
    except KeyboardInterrupt:  # before typer took over
        _interrupted()


def _interrupted() -> None:
    console.print("[bold red]interrupted[/]", highlight=False)
    sys.exit(130)
