"""Trainable-parameter fraction and adapter size on disk, per recipe and mode."""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory

from common import machine, write_result

from synthdata.config.recipe import load_recipe
from synthdata.data.sources import BUILTIN
from synthdata.models.adapter import adapt, save_adapter, weights_file
from synthdata.models.base import load_base

RECIPES = sorted(p for p in Path("recipes").glob("*.yaml") if p.stem != "cifar10")


def _mode(row: dict) -> str:
    return f"lora (rank {row['rank']})" if row["mode"] == "lora" else row["mode"]


def main() -> None:
    rows = []
    for path in RECIPES:
        recipe = load_recipe(path)
        classes = list(recipe.data.classes or BUILTIN[recipe.data.source].info.classes)
        for mode in ("lora", "full"):
            from dataclasses import replace

            model = adapt(load_base(recipe.finetune.base), classes, replace(recipe.finetune.adapter, mode=mode))
            trainable = sum(p.numel() for p in model.trainable().values())
            total = sum(p.numel() for p in model.unet.parameters())
            with TemporaryDirectory() as work:
                save_adapter(model, Path(work) / "a", {})
                size = (Path(work) / "a" / weights_file(mode)).stat().st_size
            rows.append(
                {
                    "recipe": recipe.name,
                    "classes": len(classes),
                    "mode": mode,
                    "rank": recipe.finetune.adapter.rank,
                    "trainable": trainable,
                    "total": total,
                    "fraction": trainable / total,
                    "bytes": size,
                }
            )
    table = "| recipe | classes | mode | trainable params | of total | adapter size |\n|---|---:|---|---:|---:|---:|\n"
    table += "".join(
        f"| {r['recipe']} | {r['classes']} | {_mode(r)} | {r['trainable']:,} | {r['fraction']:.1%} | {r['bytes'] / 1e6:.2f} MB |\n"
        for r in rows
    )
    print(table)
    write_result("adapter_footprint", {"rows": rows, "machine": machine()}, table)


if __name__ == "__main__":
    main()
