"""Time and peak memory of the sample stage as the number of images grows.

Each size runs the whole stage (generation, PNG + provenance, manifest, Great Expectations
suite, metadata.csv, WebDataset shards, publish) in a fresh process, so its peak resident
memory is its own. The images all go to one class (to-target on that class with no cap), so
the sizes are exact; generation cost does not depend on the class.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory

from common import machine, write_result


def child(recipe_path: str, adapter: str, images: int, out: str, store: str) -> None:
    import os

    os.environ["SYNTHDATA_MLRUNS"] = store
    from synthdata.config.recipe import load_recipe
    from synthdata.data.card import read_card
    from synthdata.stages.sample import run_sample

    recipe = load_recipe(recipe_path)
    dataset = Path("datasets") / f"{recipe.name}-lt"
    card = read_card(dataset)
    rarest = min(card.classes, key=lambda c: card.counts["train"].get(c, 0))
    settings = replace(
        recipe.sample,
        policy="to-target",
        target=card.counts["train"][rarest] + images,
        max_ratio=1e9,
        classes=[rarest],
    )
    started = time.perf_counter()
    result = run_sample(recipe, Path(adapter), dataset, Path(out), settings=settings)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"images": result.images, "seconds": seconds, "peak_rss_mb": peak_mb}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="pbc")
    parser.add_argument("--adapter", default=None, help="[models/<recipe>/adapter]")
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    recipe_path = f"recipes/{args.recipe}.yaml"
    adapter = args.adapter or f"models/{args.recipe}/adapter"
    if args.child:
        child(recipe_path, adapter, int(args.child[0]), args.child[1], args.child[2])
        return
    rows = []
    with TemporaryDirectory() as work:
        for size in [int(s) for s in args.sizes.split(",")]:
            command = [
                sys.executable,
                __file__,
                "--recipe",
                args.recipe,
                "--adapter",
                adapter,
                "--child",
                str(size),
                f"{work}/out{size}",
                f"{work}/mlruns{size}",
            ]
            completed = subprocess.run(command, capture_output=True, text=True, check=True)
            line = next(x for x in completed.stdout.splitlines() if x.startswith("RESULT "))
            row = json.loads(line[len("RESULT ") :])
            row["images_per_second"] = row["images"] / row["seconds"]
            rows.append(row)
            print(row, flush=True)
    base = rows[0]
    for row in rows:
        row["time_ratio"] = row["seconds"] / base["seconds"]
        row["size_ratio"] = row["images"] / base["images"]
        row["memory_ratio"] = row["peak_rss_mb"] / base["peak_rss_mb"]
    result = {"recipe": args.recipe, "rows": rows, "machine": machine()}
    table = (
        f"`synthdata sample` on {args.recipe}, whole stage per size in a fresh process\n\n"
        "| images | seconds | img/s | x images | x time | peak RSS | x memory |\n|---:|---:|---:|---:|---:|---:|---:|\n"
        + "".join(
            f"| {r['images']} | {r['seconds']:.1f} | {r['images_per_second']:.2f} | {r['size_ratio']:.0f} | "
            f"{r['time_ratio']:.1f} | {r['peak_rss_mb']:.0f} MB | {r['memory_ratio']:.2f} |\n"
            for r in rows
        )
    )
    print(table)
    write_result(f"sampling_scaling_{args.recipe}", result, table)


if __name__ == "__main__":
    main()
