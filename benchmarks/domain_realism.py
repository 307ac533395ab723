"""Realism of every domain recipe's validated synthetic set against its real-vs-real floor.

For each recipe it runs the pipeline of ``dvc.yaml`` up to and including ``validate`` (ingest,
long-tail, data checks, fine-tune, sample, validate; a stage whose outputs exist is skipped, so a
killed run resumes), then reads ``metrics/<recipe>/validate-figures.json``: FD, KID, precision, recall,
density and coverage in the EffNet and domain-classifier spaces with 95% intervals and floors
(the same metric between two disjoint held-out real samples of the same size), the filter's
acceptance and the gates. A recipe whose gates fail is reported as such, with its figures.

    SYNTHDATA_DATA_MIRROR=../shared/data python benchmarks/domain_realism.py --recipes eurosat,gtsrb
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import machine, write_result

from synthdata.errors import SynthdataError
from synthdata.pipeline import run_stages

STAGES = ["ingest", "longtail", "validate-data", "finetune", "sample", "validate"]
SHOWN = ["FD-EffNet", "FD-domain", "KID-EffNet", "precision-domain", "recall-domain", "coverage-domain"]


def summarise(recipe: str, metrics: dict, timings: dict[str, float], error: str | None) -> dict:
    classes = metrics["classes"]
    quota = sum(c["quota"] for c in classes.values())
    return {
        "recipe": recipe,
        "overall": {name: metrics["overall"][name] for name in SHOWN if name in metrics["overall"]},
        "quota": quota,
        "generated": sum(c["generated"] for c in classes.values()),
        "accepted": metrics["filter"]["accepted"],
        "fill_by_class": {name: c["fill"] for name, c in classes.items() if c["quota"]},
        "near_copy_fraction": metrics["memorisation"]["near_copy_fraction"],
        "domain_classifier_val_accuracy": metrics["domain_classifier"]["val_accuracy"],
        "gates": metrics["gates"],
        "passed": metrics["passed"],
        "error": error,
        "stage_seconds": timings,
    }


def table(rows: list[dict]) -> str:
    head = (
        "| recipe | accepted / quota | "
        + " | ".join(SHOWN)
        + " | gates |\n|---|---:|"
        + "---:|" * len(SHOWN)
        + "---|\n"
    )
    lines = []
    for row in rows:
        cells = []
        for name in SHOWN:
            fig = row["overall"].get(name)
            cells.append(
                "n/a"
                if fig is None
                else f"{fig['value']:.3g} [{fig['ci95'][0]:.3g}, {fig['ci95'][1]:.3g}] (floor {fig['floor']:.3g})"
            )
        failed = [f"{g['gate']}({g['scope']})" for g in row["gates"] if not g["passed"]]
        gates = "pass" if row["passed"] else "fail: " + ", ".join(sorted(set(failed)) or ["nothing accepted"])
        lines.append(
            f"| {row['recipe']} | {row['accepted']} / {row['quota']} | " + " | ".join(cells) + f" | {gates} |\n"
        )
    return (
        "Realism of each domain's validated synthetic set against held-out real images: value [95% interval] "
        "(floor = same metric between two disjoint real samples of the same size). FD/KID lower is better; "
        "precision/recall/coverage higher is better. Features: ImageNet EfficientNet-Lite0 (EffNet) and the "
        "domain classifier trained on the real train split (domain); not comparable to published Inception FID.\n\n"
        + head
        + "".join(lines)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", default="pbc,eurosat,gtsrb,pneumoniamnist,breastmnist")
    args = parser.parse_args()
    rows = []
    for recipe in args.recipes.split(","):
        started = time.perf_counter()
        error = None
        try:
            timings = run_stages(recipe, only=STAGES, log=lambda line: print(line, flush=True))
        except SynthdataError as exc:  # a failed gate still leaves its figures behind
            error, timings = str(exc), {}
        metrics_path = Path("metrics") / recipe / "validate-figures.json"
        if not metrics_path.exists():
            raise SystemExit(f"{recipe}: no validation figures ({error})")
        row = summarise(recipe, json.loads(metrics_path.read_text()), timings, error)
        row["seconds"] = time.perf_counter() - started
        rows.append(row)
        print(json.dumps({k: row[k] for k in ("recipe", "accepted", "quota", "passed", "seconds")}), flush=True)
    text = table(rows)
    print(text)
    write_result("domain_realism", {"rows": rows, "machine": machine()}, text)


if __name__ == "__main__":
    main()
