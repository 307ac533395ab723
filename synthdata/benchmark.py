"""``synthdata benchmark``: every domain recipe end to end, with the ablation and the sanity anchor,
summarised in ``benchmarks/RESULTS.md`` and ``benchmarks/results.json``.

Per recipe: the pipeline of ``dvc.yaml`` (ingest ... utility, report), then the ablation — the
same network trained *from scratch* on the same data and steps, sampled and validated the same
way, added as the ``real+synth-scratch`` arm (the other arms' finished runs are reused, not
retrained). Then the sanity anchor: the downstream trainer's real-only arm on the *full*
PneumoniaMNIST and BreastMNIST against the MedMNIST v2 paper's ResNet-18 (28 px) test accuracy.

Presets: ``cpu`` runs the recipes as written in the repository root (the outputs ``dvc repro``
makes are reused); ``gpu`` deep-merges ``benchmarks/presets/gpu.yaml`` onto every recipe and
works in ``benchmarks/work/gpu`` so its outputs never mix with the CPU ones. Stages whose outputs
exist are skipped, so a killed benchmark resumes; each stage's wall time is kept in
``<root>/benchmarks/work/timings.json`` when it runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from synthdata.atomic import write_text
from synthdata.config.recipe import load_recipe
from synthdata.downstream.metrics import HEADLINE, figure_text
from synthdata.errors import SynthdataError
from synthdata.pipeline import run_stages
from synthdata.provenance import versions
from synthdata.reporting.stage_files import StageFiles
from synthdata.tracking.mlflow_run import finish_pipeline

ANCHOR = {"pneumoniamnist": 0.854, "breastmnist": 0.863}
"""MedMNIST v2 (Yang et al. 2023), ResNet-18 (28), test accuracy."""
REALISM = ("FD-EffNet", "FD-domain", "precision-domain", "coverage-domain")
PRESETS = ("cpu", "gpu")


@dataclass
class Benchmark:
    repo: Path
    preset: str = "cpu"
    log: Any = print
    timings: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.repo if self.preset == "cpu" else self.repo / "benchmarks" / "work" / self.preset

    def recipe_path(self, name: str) -> Path:
        return self.root / "recipes" / f"{name}.yaml"

    def prepare(self, names: list[str]) -> None:
        """The preset's recipes: as written (cpu) or merged with the preset's overrides."""
        if self.preset == "cpu":
            return
        overrides = yaml.safe_load((self.repo / "benchmarks" / "presets" / f"{self.preset}.yaml").read_text()) or {}
        for name in set(names) | set(ANCHOR):
            data = yaml.safe_load((self.repo / "recipes" / f"{name}.yaml").read_text())
            write_text(self.recipe_path(name), yaml.safe_dump(_merge(data, overrides), sort_keys=False))
            load_recipe(self.recipe_path(name))  # the merged recipe must still be a valid one

    def timed(self, recipe: str, stage: str, seconds: float) -> None:
        self.timings.setdefault(recipe, {})[stage] = seconds
        path = self.root / "benchmarks" / "work" / "timings.json"
        stored = json.loads(path.read_text()) if path.is_file() else {}
        stored.setdefault(recipe, {})[stage] = seconds
        write_text(path, json.dumps(stored, indent=2) + "\n")


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        out[key] = _merge(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def run_pipeline(bench: Benchmark, name: str) -> str | None:
    """The recipe's pipeline up to the report; a failed gate is a result (the error), not a crash."""
    try:
        for stage, seconds in run_stages(name, bench.root, pipeline=bench.repo / "dvc.yaml", log=bench.log).items():
            bench.timed(name, stage, seconds)
    except SynthdataError as exc:
        bench.log(f"{name}: {exc}")
        return str(exc)
    return None


def run_ablation(bench: Benchmark, name: str) -> str | None:
    """The from-scratch model, its validated set, and the utility run with the scratch arm."""
    recipe = load_recipe(bench.recipe_path(name))
    validated = bench.root / "validated" / f"{name}-scratch"
    try:
        for stage, output, call in _scratch_steps(bench.root, name, recipe):
            if output.exists():
                continue
            bench.log(f"{stage}@{name}")
            started = time.perf_counter()
            call()
            bench.timed(name, stage, time.perf_counter() - started)
    except SynthdataError as exc:
        bench.log(f"{name} ablation: {exc}")
        return str(exc)
    if not validated.exists():
        return "the scratch model's synthetic set failed validation"
    started = time.perf_counter()
    _utility_with_scratch(bench.root, name, recipe, validated)
    bench.timed(name, "utility-ablation", time.perf_counter() - started)
    return None


def _scratch_steps(root: Path, name: str, recipe: Any) -> list[tuple[str, Path, Callable[[], Any]]]:
    """The ablation's stages, each with the output whose existence means it is done: the same
    network trained from scratch, its samples and their validation."""
    from synthdata.stages.finetune import run_finetune
    from synthdata.stages.sample import run_sample
    from synthdata.stages.validate import run_validate

    scratch = replace(
        recipe, finetune=replace(recipe.finetune, adapter=replace(recipe.finetune.adapter, mode="scratch"))
    )
    dataset = root / "datasets" / f"{name}-lt"
    model, synthetic, validated = (
        root / "models" / name / "scratch",
        root / "synthetic" / f"{name}-scratch",
        root / "validated" / f"{name}-scratch",
    )
    metrics = root / "metrics" / name / "validate-scratch.json"
    return [
        ("finetune-scratch", model, lambda: run_finetune(scratch, dataset, model, model.with_name("scratch.work"))),
        ("sample-scratch", synthetic, lambda: run_sample(scratch, model, dataset, synthetic)),
        (
            "validate-scratch",
            metrics,
            lambda: run_validate(
                scratch,
                dataset,
                synthetic,
                model,
                validated,
                pool=root / "datasets" / name,
                files=StageFiles(figures=metrics),
            ),
        ),
    ]


def _utility_with_scratch(root: Path, name: str, recipe: Any, validated: Path) -> None:
    """The utility run with the ``real+synth-scratch`` arm added (the other arms' runs are reused)."""
    from synthdata.stages.utility import run_utility

    arms = [*recipe.utility.arms, "real+synth-scratch"]
    run_utility(
        recipe,
        root / "datasets" / f"{name}-lt",
        synthetic=root / "validated" / name,
        scratch=validated,
        work=root / "models" / name / "utility.work",
        files=StageFiles(figures=root / "metrics" / name / "utility-ablation.json"),
        report=root / "reports" / name / "utility-ablation",
        settings=replace(recipe.utility, arms=arms),
    )


def run_anchor(bench: Benchmark, name: str) -> dict[str, Any]:
    """Real-only arm on the full (not long-tailed) dataset, against the paper's figure."""
    from synthdata.stages.utility import run_utility

    run_stages(name, bench.root, only=["ingest"], pipeline=bench.repo / "dvc.yaml", log=bench.log)
    recipe = load_recipe(bench.recipe_path(name))
    out = bench.root / "metrics" / name / "anchor.json"
    result = run_utility(
        recipe,
        bench.root / "datasets" / name,
        work=bench.root / "models" / name / "anchor.work",
        files=StageFiles(figures=out),
        settings=replace(recipe.utility, arms=["real"]),
    )
    accuracy = result.arms["real"]["accuracy"]
    return {
        "accuracy": accuracy,
        "paper_resnet18_28": ANCHOR[name],
        "gap": accuracy["mean"] - ANCHOR[name],
        "steps": result.metrics["steps"],
        "seeds": list(recipe.utility.seeds),
    }


def _read(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def collect(
    bench: Benchmark, names: list[str], errors: dict[str, dict[str, str | None]], anchor: dict[str, Any]
) -> dict[str, Any]:
    """Every recipe's figures, read back from the files its stages wrote, with the hardware, the
    errors, the anchor and the component benchmarks' results."""
    root = bench.root
    stored = _read(root / "benchmarks" / "work" / "timings.json") or {}
    results: dict[str, Any] = {
        "preset": bench.preset,
        "hardware": versions(),
        "utility": {},
        "goal": {},
        "budget": {},
        "realism": {},
        "throughput": {},
        "wall_seconds": {},
        "errors": errors,
        "anchor": anchor,
    }
    for name in names:
        metrics = root / "metrics" / name
        utility = _read(metrics / "utility-ablation.json") or _read(metrics / "utility-figures.json")
        if utility:
            results["utility"][name] = _utility_figures(utility)
            results["goal"][name] = utility["goal"]
            results["budget"][name] = _budget(utility)
        validate = _read(metrics / "validate-figures.json")
        if validate:
            results["realism"][name] = _realism(validate, _read(metrics / "validate-scratch.json"))
        timing = stored.get(name, {})
        results["throughput"][name] = _throughput(
            _read(root / "models" / name / "adapter" / "adapter.json"),
            _read(root / "synthetic" / name / "sample.json"),
            timing,
        )
        results["wall_seconds"][name] = timing
    component = bench.repo / "benchmarks" / "results"
    results["components"] = (
        {p.stem: p.read_text() for p in sorted(component.glob("*.md"))} if component.is_dir() else {}
    )
    return results


def _utility_figures(utility: dict[str, Any]) -> dict[str, Any]:
    """Each arm's headline figures from a utility run's metrics."""
    shown = ("mean", "ci95", "reason")  # the reason only where a figure is n/a
    return {
        arm: {m: {k: v for k, v in f[m].items() if k in shown} for m in HEADLINE} for arm, f in utility["arms"].items()
    }


def _budget(utility: dict[str, Any]) -> dict[str, Any]:
    """How a utility run chose its steps, the network and image size, and its verdict."""
    return {
        "text": utility["budget"]["text"],
        "steps": utility["steps"],
        "epochs": utility["budget"]["epochs"],
        "rule": utility["budget"]["rule"],
        "converged": utility["budget"]["converged"],
        "doubled": utility["budget"]["doubled"],
        "model": utility["model"],
        "image_size": utility["image_size"],
        "verdict": utility["verdict"],
    }


def _realism(validate: dict[str, Any], scratch: dict[str, Any] | None) -> dict[str, Any]:
    """The realism figures of the adapted model's set (and the scratch model's, if validated),
    with the accepted count, the quota and whether the gates passed."""
    return {
        "adapted": {m: validate["overall"][m] for m in REALISM if m in validate["overall"]},
        "scratch": {m: scratch["overall"][m] for m in REALISM if m in scratch["overall"]} if scratch else None,
        "accepted": validate["filter"]["accepted"],
        "quota": sum(c["quota"] for c in validate["classes"].values()),
        "gates_passed": validate["passed"],
    }


def _throughput(
    adapter: dict[str, Any] | None, sample: dict[str, Any] | None, timing: dict[str, float]
) -> dict[str, float]:
    """Fine-tuning images per second from the adapter's record; sampling's from the stage's wall time."""
    throughput = {}
    if adapter:
        throughput["finetune_images_per_second"] = (
            adapter["steps"] * adapter["train"]["batch_size"] / adapter["train_seconds"]
        )
    if sample and "sample" in timing:
        throughput["sample_images_per_second"] = sample["images"] / timing["sample"]
    return throughput


def render(results: dict[str, Any]) -> str:
    """RESULTS.md: the figures of :func:`collect` as Markdown sections."""
    hw = results["hardware"]
    lines = [
        "# Benchmark results",
        "",
        f"Made by `synthdata benchmark --preset {results['preset']}` on {hw['platform']}, Python {hw['python']}, "
        f"torch {hw['torch']}, synthdata {hw['synthdata']} at {hw['git_commit']}. Every figure in the README comes from here.",
        "",
    ]
    lines += _utility_section(results)
    lines += _realism_section(results["realism"])
    lines += _throughput_section(results["throughput"], results["wall_seconds"])
    if results["anchor"]:
        lines += _anchor_section(results["anchor"])
    if results.get("components"):
        lines += _components_section(results["components"])
    failures = {n: e for n, e in results["errors"].items() if any(e.values())}
    if failures:
        lines += _heading("What did not complete") + [
            f"- {n}: " + "; ".join(f"{k}: {v}" for k, v in e.items() if v) for n, e in failures.items()
        ]
    return "\n".join(lines) + "\n"


def _heading(title: str) -> list[str]:
    """A second-level heading after a blank line, and the blank line after it."""
    return ["", f"## {title}", ""]


def _utility_section(results: dict[str, Any]) -> list[str]:
    lines = [
        "## Downstream utility (real test split; mean [95% interval over seeds])",
        "",
        "Each arm trains the same network for the same optimizer steps, batch and seeds; the steps come from the recipe's "
        "budget rule (below each table), where the real reference arm's validation accuracy stopped rising, and the best "
        "classical arm also trains at twice them (`@2x`). Arms whose name contains `synth` add validated synthetic images.",
        "",
    ]
    for name, arms in results["utility"].items():
        lines += [f"### {name}", ""]
        budget = results.get("budget", {}).get(name)
        if budget:
            lines += [f"{budget['model']} at {budget['image_size']} px. Budget: {budget['text']}", ""]
        lines += ["| arm | balanced accuracy | rare-third recall | macro-F1 | accuracy |", "|---|---|---|---|---|"]
        lines += [
            f"| {arm} | "
            + " | ".join(figure_text(f[m]) for m in ("balanced_accuracy", "rare_third_recall", "macro_f1", "accuracy"))
            + " |"
            for arm, f in arms.items()
        ]
        lines += _goal_lines(results["goal"].get(name, {}))
        if budget:
            lines += [""] + [f"- {line}" for line in budget["verdict"]]
        lines.append("")
    return lines


def _goal_lines(goal: dict[str, Any]) -> list[str]:
    if not goal.get("evaluated"):
        return []
    return [
        "",
        "Goal (best synthetic arm over best classical: +0.03 balanced accuracy, +0.10 rare-third recall, intervals apart): "
        + "; ".join(
            f"{m} {goal[m]['best_synthetic']} vs {goal[m]['best_classical']} {goal[m]['gain']:+.3f} "
            f"({'met' if goal[m]['met'] else 'not met'})"
            for m in ("balanced_accuracy", "rare_third_recall")
        ),
    ]


def _realism_section(realism: dict[str, Any]) -> list[str]:
    lines = [
        "## Realism against floors (held-out real; value [95% interval], floor = real vs real)",
        "",
        "| recipe | set | accepted / quota | " + " | ".join(REALISM) + " |",
        "|---|---|---|" + "---|" * len(REALISM),
    ]
    for name, r in realism.items():
        for kind in ("adapted", "scratch"):
            figures = r.get(kind)
            if not figures:
                continue
            cells = [
                f"{figures[m]['value']:.3g} [{figures[m]['ci95'][0]:.3g}, {figures[m]['ci95'][1]:.3g}] (floor {figures[m]['floor']:.3g})"
                if m in figures
                else "n/a"
                for m in REALISM
            ]
            count = f"{r['accepted']} / {r['quota']}" if kind == "adapted" else ""
            lines.append(f"| {name} | {kind} | {count} | " + " | ".join(cells) + " |")
    return lines


def _throughput_section(throughput: dict[str, Any], wall_seconds: dict[str, Any]) -> list[str]:
    lines = _heading("Throughput and wall time") + [
        "| recipe | fine-tune img/s | sample img/s (stage) | stage wall times (s) |",
        "|---|---|---|---|",
    ]
    for name in throughput:
        t, w = throughput[name], wall_seconds[name]
        fine = f"{t['finetune_images_per_second']:.1f}" if "finetune_images_per_second" in t else "n/a"
        sample = (
            f"{t['sample_images_per_second']:.2f}" if "sample_images_per_second" in t else "n/a (stage not timed here)"
        )
        lines.append(
            f"| {name} | {fine} | {sample} | " + (", ".join(f"{k} {v:.0f}" for k, v in w.items()) or "n/a") + " |"
        )
    return lines


def _anchor_section(anchor: dict[str, Any]) -> list[str]:
    lines = _heading("Sanity anchor: real-only arm on the full MedMNIST sets") + [
        "| dataset | synthdata real-only accuracy | MedMNIST v2 ResNet-18 (28) | gap |",
        "|---|---|---|---|",
    ]
    for name, a in anchor.items():
        lines.append(f"| {name} | {figure_text(a['accuracy'])} | {a['paper_resnet18_28']:.3f} | {a['gap']:+.3f} |")
    return lines


def _components_section(components: dict[str, str]) -> list[str]:
    lines = _heading("Component benchmarks") + [
        "Narrower measurements, each by its script under `benchmarks/` (see `benchmarks/README.md`), "
        "copied from `benchmarks/results/` when this file was written.",
        "",
    ]
    for name, text in components.items():
        lines += [f"### {name}", "", text.strip(), ""]
    return lines


def run_benchmark(
    repo: Path,
    names: list[str],
    *,
    preset: str = "cpu",
    ablation: bool | list[str] = True,
    anchor: bool = True,
    log=print,
) -> Path:
    """``ablation``: True (every recipe), False (none) or the recipes that get it (it costs a fine-tune per recipe)."""
    if preset not in PRESETS:
        raise SynthdataError(f"unknown preset '{preset}'; choose one of {', '.join(PRESETS)}")
    ablated = set(names) if ablation is True else set(ablation or [])
    if ablated - set(names):
        raise SynthdataError(f"ablation asked for recipes not benchmarked: {', '.join(sorted(ablated - set(names)))}")
    bench = Benchmark(repo, preset, log)
    bench.prepare(names)
    errors: dict[str, dict[str, str | None]] = {}
    for name in names:
        errors[name] = {"pipeline": run_pipeline(bench, name)}
        if name in ablated and errors[name]["pipeline"] is None:
            errors[name]["ablation"] = run_ablation(bench, name)
            finish_pipeline(name, {})  # the ablation's runs opened a pipeline run: close it
    anchors = {name: run_anchor(bench, name) for name in ANCHOR} if anchor else {}
    results = collect(bench, names, errors, anchors)
    out = repo / "benchmarks" if preset == "cpu" else bench.root
    write_text(out / "results.json", json.dumps(results, indent=2, default=str) + "\n")
    return write_text(out / "RESULTS.md", render(results))
