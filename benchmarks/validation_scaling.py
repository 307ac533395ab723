"""Time and peak memory of the validation stage for 1k, 10k and 50k synthetic images.

Making 50k images with the model takes hours on CPU, and validation cost does not depend on how
an image was made, so the sets are built from the recipe's synthetic set: its images, each
shifted by a seeded +-3 grey-level offset and numbered in its first pixels so every file is
distinct, under the same provenance
(adapter, base, sampling run). Each size runs the whole stage (provenance check, domain
classifier, streamed judging, filter without refill, metrics on at most 5,000 images per side,
report, publish) in a fresh process, so its peak resident memory is its own. Images are judged
in chunks, so memory should stay nearly flat while time grows with the set.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
from common import machine, write_result
from PIL import Image


def build_set(source: Path, target: Path, size: int) -> None:
    """A synthetic set of ``size`` distinct images modelled on ``source`` (same provenance)."""
    from synthdata.data.card import read_card
    from synthdata.data.manifest import manifest_hash, read_manifest, to_frame, write_manifest
    from synthdata.hashing import sha256_bytes
    from synthdata.sampling.jobs import make_item

    frame = read_manifest(source)
    rows, rng = [], np.random.default_rng(0)
    counters: dict[str, int] = {}
    for n in range(size):
        template = frame.iloc[n % len(frame)].to_dict()
        with Image.open(source / template["relpath"]) as image:
            array = np.asarray(image, dtype=np.int16)
        array = np.clip(array + int(rng.integers(-3, 4)), 0, 255).astype(np.uint8)
        # Every file distinct: the image's number written into its first three pixel values
        # (an offset per repeat saturates bright images after ~30 repeats and makes copies).
        flat = array.reshape(-1)
        flat[:3] = [(n >> 16) & 255, (n >> 8) & 255, n & 255]
        index = counters.get(template["label_name"], 0)
        counters[template["label_name"]] = index + 1
        item = make_item(f"bench{size}", int(template["label"]), template["label_name"], index)
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        data = buffer.getvalue()
        (target / template["label_name"]).mkdir(parents=True, exist_ok=True)
        (target / item.relpath).write_bytes(data)
        rows.append(
            {
                **template,
                "id": item.id,
                "relpath": item.relpath,
                "sha256": sha256_bytes(data),
                "sample_index": index,
                "seed": item.seed,
            }
        )
    manifest = to_frame(rows, synthetic=True)
    write_manifest(manifest, target)
    card = read_card(source)
    card.counts = {"train": dict(counters)}
    card.manifest_sha256 = manifest_hash(manifest)
    card.write(target)
    record = json.loads((source / "sample.json").read_text())
    record["plan"] = [{"class": c, "synthetic": counters.get(c, 0)} for c in card.classes]
    (target / "sample.json").write_text(json.dumps(record))


def child(recipe_path: str, size: int, work: Path) -> None:
    import os

    os.environ["SYNTHDATA_MLRUNS"] = str(work / "mlruns")
    from synthdata.config.recipe import load_recipe
    from synthdata.stages.validate import run_validate

    recipe = load_recipe(recipe_path)
    settings = replace(
        recipe.validate,
        filter=replace(recipe.validate.filter, max_rounds=0),
        gates=replace(recipe.validate.gates, min_fill=None, max_near_copy_fraction=None, min_diversity_ratio=None),
    )
    started = time.perf_counter()
    result = run_validate(
        recipe,
        Path("datasets") / f"{recipe.name}-lt",
        work / "synthetic",
        Path("models") / recipe.name / "adapter",
        work / "accepted",
        pool=Path("datasets") / recipe.name,
        report=work / "report",
        settings=settings,
    )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        "RESULT " + json.dumps({"images": size, "accepted": result.accepted, "seconds": seconds, "peak_rss_mb": peak}),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="pbc")
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    recipe_path = f"recipes/{args.recipe}.yaml"
    if args.child:
        child(recipe_path, int(args.child[0]), Path(args.child[1]))
        return
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        with TemporaryDirectory() as folder:
            work = Path(folder)
            build_set(Path("synthetic") / args.recipe, work / "synthetic", size)
            completed = subprocess.run(
                [sys.executable, __file__, "--recipe", args.recipe, "--child", str(size), str(work)],
                capture_output=True,
                text=True,
            )
            if completed.returncode:
                sys.exit(completed.stderr[-3000:])
            line = next(x for x in completed.stdout.splitlines() if x.startswith("RESULT "))
            row = json.loads(line[len("RESULT ") :])
            row["images_per_second"] = size / row["seconds"]
            rows.append(row)
            print(row, flush=True)
            shutil.rmtree(work / "accepted", ignore_errors=True)
    result = {"recipe": args.recipe, "rows": rows, "machine": machine()}
    table = (
        f"`synthdata validate` on {args.recipe}, whole stage per size in a fresh process (filter on, no refill)\n\n"
        "| images | seconds | img/s | peak RSS |\n|---:|---:|---:|---:|\n"
        + "".join(
            f"| {r['images']} | {r['seconds']:.0f} | {r['images_per_second']:.0f} | {r['peak_rss_mb']:.0f} MB |\n"
            for r in rows
        )
    )
    print(table)
    write_result(f"validation_scaling_{args.recipe}", result, table)


if __name__ == "__main__":
    main()
