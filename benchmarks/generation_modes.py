"""Generation modes side by side: noise, img2img and interpolate at several strengths.

For each recipe and each mode (``noise``, ``img2img-<strength>``, ``interpolate-<strength>``,
optionally ``...@g<guidance>`` and ``...@c<classifier guidance>``) the pipeline's own stages run on the pipeline's adapter and
long-tailed dataset (``dvc repro`` first): ``sample`` with the recipe's plan, ``validate``
(filter and refill as the recipe says, gates reported against the recipe's gates with
``min_fill`` at least 0.8, not enforced, so every mode's accepted set can be scored), then the
utility arm ``real+synth-oversampled-augmented`` at the pipeline's budget and seeds beside the
recipe's classical arms (the pipeline's cached runs, the doubled arm included). Real test
split, mean [95% interval]. Work folders live under ``benchmarks/work/`` (kept: a killed run
resumes, a finished mode is not redone).

    python benchmarks/generation_modes.py --recipes pbc --modes noise,img2img-0.3,img2img-0.5,interpolate-0.5
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from common import RESULTS, machine, real_pools, split_pool, write_result

from synthdata.config.recipe import GateSettings, load_recipe
from synthdata.data.card import read_card
from synthdata.data.manifest import verify_dataset
from synthdata.downstream.arms import DOUBLED, is_classical
from synthdata.downstream.augment import Augmentation
from synthdata.downstream.metrics import class_counts, figure_text, interval, rare_classes
from synthdata.downstream.runner import ArmRunner
from synthdata.reporting.stage_files import StageFiles
from synthdata.stages.sample import run_sample
from synthdata.stages.validate import run_validate
from synthdata.validation.gates import evaluate_gates

ARM = "real+synth-oversampled-augmented"
HEADER = (
    "# Generation modes\n\n`python benchmarks/generation_modes.py --recipes <recipe> --modes <modes>` on the pipeline's "
    "adapter and long-tailed dataset of each recipe (`dvc repro` first); 2 CPU threads."
)
WORK = Path(__file__).resolve().parent / "work"


def parse_mode(spec: str) -> dict:
    """``img2img-0.5@g3@c0.05`` -> {mode: img2img, strength: 0.5, guidance: 3.0,
    classifier_guidance: 0.05} (``@g``: classifier-free guidance, ``@c``: classifier guidance; ``@r<n>``: at most n refill
    rounds instead of the recipe's, for a mode whose pass rate is too low to refill in time)."""
    name, *suffixes = spec.split("@")
    mode, _, strength = name.partition("-")
    settings: dict = {"mode": mode}
    if strength:
        settings["strength"] = float(strength)
    keys = {"g": "guidance", "c": "classifier_guidance", "r": "max_rounds"}
    for suffix in suffixes:
        if suffix[:1] not in keys:
            raise SystemExit(f"error: mode {spec!r}: unknown suffix @{suffix} (@g<scale>, @c<scale> or @r<rounds>)")
        value = float(suffix[1:])
        settings[keys[suffix[0]]] = int(value) if suffix[0] == "r" else value
    return settings


def _train_once() -> None:
    """Every mode is judged by the same domain classifier (same real train split, settings and
    seed): train it once per process instead of once per mode."""
    import hashlib

    from synthdata.stages import validate as validate_stage

    trained: dict[str, object] = {}
    train = validate_stage.train_domain_classifier

    def cached(images, labels, classes, settings):
        key = hashlib.sha256(
            images.numpy().tobytes() + labels.numpy().tobytes() + repr((classes, settings)).encode()
        ).hexdigest()
        if key not in trained:
            trained[key] = train(images, labels, classes, settings)
        return trained[key]

    validate_stage.train_domain_classifier = cached


def measure_mode(recipe, spec: str, dataset: Path, parent: Path, adapter: Path) -> dict:
    """Sample and validate one mode; the figures of its accepted set."""
    folder = WORK / recipe.name / spec
    record = folder / "figures.json"
    if record.is_file():
        return json.loads(record.read_text())
    settings = parse_mode(spec)
    rule = replace(recipe.validate.filter, max_rounds=settings.pop("max_rounds", recipe.validate.filter.max_rounds))
    settings = replace(recipe.sample, **settings)
    started = time.perf_counter()
    sampled = run_sample(recipe, adapter, dataset, folder / "synthetic", settings=settings)
    sample_seconds = time.perf_counter() - started
    gates = recipe.validate.gates
    wanted = replace(gates, min_fill=max(gates.min_fill or 0.0, 0.8))
    off = GateSettings(max_near_copy_fraction=None, min_fill=None, min_diversity_ratio=None)
    validated = run_validate(
        recipe,
        dataset,
        folder / "synthetic",
        adapter,
        folder / "validated",
        pool=parent,
        files=StageFiles(figures=folder / "validate.json"),
        report=folder / "report",
        settings=replace(recipe.validate, gates=off, filter=rule),
    )
    figures = validated.metrics
    overall = figures.overall
    results = evaluate_gates(wanted, figures)
    quota = sum(validated.quota.values())
    out = {
        "settings": parse_mode(spec),
        "planned": quota,
        "accepted": validated.accepted,
        "accepted_fraction": validated.accepted / quota if quota else 0.0,
        "generated": sampled.images + validated.regenerated,
        "dropped": figures.filter["dropped"],
        "fd_domain": overall.get("FD-domain", {}).get("value"),
        "fd_domain_floor": overall.get("FD-domain", {}).get("floor"),
        "fd_effnet": overall.get("FD-EffNet", {}).get("value"),
        "fd_effnet_floor": overall.get("FD-EffNet", {}).get("floor"),
        # a resumed run made only part of its images in this call: no speed figure then
        "images_per_second": sampled.generated / sample_seconds if sampled.generated == sampled.images else None,
        "sample_seconds": sample_seconds,
        "distance_to_source": figures.lineage["distance_to_source"],
        "real_nearest_neighbour": figures.lineage["real_nearest_neighbour"],
        "within_source_diversity": {c: e.get("within_source_diversity_ratio") for c, e in figures.classes.items()},
        "diversity_ratio": {c: e.get("diversity_ratio") for c, e in figures.classes.items()},
        "gates_failed": [f"{g.gate}({g.scope})" for g in results if not g.passed],
        "filter": {"max_rounds": rule.max_rounds, "max_refill": rule.max_refill},
        "validated": str(folder / "validated"),
    }
    record.write_text(json.dumps(out, indent=2, default=float) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="pbc")
    parser.add_argument("--modes", default="noise,img2img-0.3,img2img-0.5,interpolate-0.5")
    parser.add_argument("--no-utility", action="store_true", help="sample and validate only")
    args = parser.parse_args()
    _train_once()
    result: dict = {}
    for name in args.recipes.split(","):
        recipe = load_recipe(Path("recipes") / f"{name}.yaml")
        parent = Path("datasets") / recipe.name
        dataset = Path("datasets") / f"{recipe.name}-lt" if recipe.longtail.enabled else parent
        adapter = Path("models") / recipe.name / "adapter"
        modes = {
            spec: measure_mode(recipe, spec, dataset, parent if dataset != parent else None, adapter)
            for spec in args.modes.split(",")
        }
        if not args.no_utility:
            _utility(recipe, dataset, modes)
        result[recipe.name] = modes
    # Recipes and modes measured before (another run of this script) stay in the result beside
    # the new ones; a mode measured again replaces its earlier figures.
    previous = RESULTS / "generation_modes.json"
    earlier = json.loads(previous.read_text()) if previous.is_file() else {}
    earlier = {k: v for k, v in earlier.get("recipes", earlier).items() if k not in ("machine", "seconds")}
    merged = {**earlier, **{name: {**earlier.get(name, {}), **modes} for name, modes in result.items()}}
    lines = [HEADER, ""] + [line for name in merged for line in _table(name, merged[name])]
    path = write_result("generation_modes", {**merged, "machine": machine()}, "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {path}")


def _utility(recipe, dataset: Path, modes: dict) -> None:
    """The synthetic arm per mode beside the classical arms, at the pipeline's budget."""
    settings = recipe.utility
    size = settings.image_size or read_card(dataset).width
    card, real, val, test = real_pools(dataset, size)
    classes = list(card.classes)
    pipeline = json.loads((Path("metrics") / recipe.name / "utility-figures.json").read_text())
    steps = int(pipeline["steps"])
    rare = rare_classes(class_counts(real.labels, classes), settings.rare_fraction)
    work = Path("models") / recipe.name / "utility.work"
    work.mkdir(parents=True, exist_ok=True)
    domain = Augmentation(settings.augmentation)
    base = ArmRunner(settings, classes, real, val, test, {}, rare, work, size, domain)
    classical = [a for a in settings.arms if is_classical(a)]
    runs = {a: [base.run(a, s, steps) for s in settings.seeds] for a in classical}
    doubled = max(classical, key=lambda a: sum(r["val"]["balanced_accuracy"] or 0 for r in runs[a]))
    runs[doubled + DOUBLED] = [base.run(doubled + DOUBLED, s, 2 * steps) for s in settings.seeds]
    figures = {
        a: {k: interval([r[k] for r in rs]) for k in ("balanced_accuracy", "rare_third_recall")}
        for a, rs in runs.items()
    }
    best = {k: max(figures, key=lambda a: figures[a][k]["mean"]) for k in ("balanced_accuracy", "rare_third_recall")}
    for entry in modes.values():
        fake_folder = Path(entry["validated"])
        fake = split_pool(fake_folder, "train", size, card.channels, verify_dataset(fake_folder).manifest_sha256)
        runner = ArmRunner(settings, classes, real, val, test, {"adapted": fake}, rare, work, size, domain)
        arm_runs = [runner.run(ARM, s, steps) for s in settings.seeds]
        for key in ("balanced_accuracy", "rare_third_recall"):
            entry[key] = interval([r[key] for r in arm_runs])
            entry[f"{key}_gain"] = entry[key]["mean"] - figures[best[key]][key]["mean"]
        entry["best_classical"] = {k: {"arm": best[k], **figures[best[k]][k]} for k in best}
        entry["steps"] = steps
        entry["seeds"] = list(settings.seeds)


def speed(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _table(recipe: str, modes: dict) -> list[str]:
    lines = [
        f"## {recipe}",
        "",
        "Accepted fraction of the plan after filter and refill (the recipe's refill rounds at the time, in the JSON); "
        "the share of all generated images (refills included) the filter passed; FD against held-out real images beside its floor "
        "(real vs real); distance to source: median RMS pixel distance of a derived image to its own source, beside "
        "held-out real images' median distance to their nearest train image; images/s of the sample stage (2 CPU threads); "
        "downstream: real+synth-oversampled-augmented on the real test split, mean [95% interval], against the best "
        "classical arm at the same budget (the doubled arm included).",
        "",
        "| mode | accepted of the plan | passed the filter | FD-domain (floor) | FD-EffNet (floor) | distance to source (real NN) | images/s | "
        "balanced accuracy | gain | rare-third recall | gain | gates (min_fill 0.8) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for spec, e in modes.items():
        source = e["distance_to_source"]["pixel"]["median"]
        real = e["real_nearest_neighbour"]["pixel"]["median"]
        distance = "–" if source != source or source is None else f"{source:.3f} ({real:.3f})"
        utility = ["–"] * 4
        if "balanced_accuracy" in e:
            utility = [
                figure_text(e["balanced_accuracy"]),
                f"{e['balanced_accuracy_gain']:+.3f}",
                figure_text(e["rare_third_recall"]),
                f"{e['rare_third_recall_gain']:+.3f}",
            ]
        fd = f"{e['fd_domain']:.3g} ({e['fd_domain_floor']:.3g})" if e["fd_domain"] is not None else "–"
        fe = f"{e['fd_effnet']:.3g} ({e['fd_effnet_floor']:.3g})" if e["fd_effnet"] is not None else "–"
        gates = "pass" if not e["gates_failed"] else "fail: " + ", ".join(e["gates_failed"])
        passed = 1 - sum(n for reasons in e["dropped"].values() for n in reasons.values()) / max(e["generated"], 1)
        lines.append(
            f"| {spec} | {e['accepted_fraction']:.2f} ({e['accepted']}/{e['planned']}) | {passed:.2f} of {e['generated']} | {fd} | {fe} | {distance} | "
            f"{speed(e['images_per_second'])} | {' | '.join(utility[:2])} | {' | '.join(utility[2:])} | {gates} |"
        )
    first = next(iter(modes.values()))
    if "best_classical" in first:
        for key, best in first["best_classical"].items():
            lines.append(f"\nBest classical arm by {key.replace('_', ' ')}: {best['arm']} {figure_text(best)}.")
    return lines + [""]


if __name__ == "__main__":
    main()
