"""Realism of a LoRA-adapted base against the same UNet trained from scratch on the same data.

Both are trained by the finetune stage with the recipe's settings and the same number of
steps, then sample the same class-balanced label list (DPM-Solver++ 20 steps, same seeds). Each
set is compared with as many images of the domain's real *test* split (FD-EffNet), beside the
floor: the distance between two disjoint real test samples of the same size.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory

import torch
from common import machine, write_result

from synthdata.config.recipe import load_recipe
from synthdata.data.tensors import load_split, to_uint8
from synthdata.models.adapter import load_adapted
from synthdata.models.backbone import PixelBackbone
from synthdata.models.base import load_base
from synthdata.sampling.generate import generate
from synthdata.stages.finetune import run_finetune
from synthdata.validation.features import EffNetFeatures
from synthdata.validation.frechet import frechet_distance


def sample(
    adapter: Path, base_folder: str | None, labels: torch.Tensor, size: int, channels: int, guidance: float
) -> torch.Tensor:
    model = load_adapted(adapter, base_folder)
    backbone = PixelBackbone(model.unet, model.null_class)
    scheduler = load_base(base_folder).scheduler
    generator = torch.Generator().manual_seed(0)
    out = [
        to_uint8(
            generate(
                backbone,
                scheduler,
                labels[i : i + 250],
                shape=(channels, size, size),
                guidance=guidance,
                generator=generator,
            )
        )
        for i in range(0, len(labels), 250)
    ]
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="pbc")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument("--modes", default="lora,scratch")
    args = parser.parse_args()
    recipe = load_recipe(f"recipes/{args.recipe}.yaml")
    dataset = Path("datasets") / f"{recipe.name}-lt"
    base = load_base(recipe.finetune.base)
    size, channels = base.record["unet"]["sample_size"], base.record["unet"]["channels"]
    real, _, classes = load_split(dataset, "test", size=size, channels=channels)
    order = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))
    real_a, real_b = real[order[: args.samples]], real[order[args.samples : 2 * args.samples]]
    labels = torch.arange(args.samples) % len(classes)
    features = EffNetFeatures()
    f_a, f_b = features(real_a), features(real_b)
    result = {
        "recipe": recipe.name,
        "steps": args.steps,
        "samples": args.samples,
        "guidance": args.guidance,
        "floor_real_vs_real": frechet_distance(f_b, f_a),
        "modes": {},
        "machine": machine(),
    }
    with TemporaryDirectory() as work:
        for mode in args.modes.split(","):
            settings = replace(
                recipe.finetune,
                adapter=replace(recipe.finetune.adapter, mode=mode),
                train=replace(recipe.finetune.train, steps=args.steps),
            )
            out = Path(work) / mode
            trained, _ = run_finetune(replace(recipe, finetune=settings), dataset, out, Path(work) / f"{mode}.work")
            fake = sample(out, recipe.finetune.base, labels, size, channels, args.guidance)
            result["modes"][mode] = {
                "fd_effnet": frechet_distance(features(fake), f_a),
                "train_seconds": trained.seconds,
            }
            print(mode, result["modes"][mode], flush=True)
    table = (
        f"FD-EffNet against {args.samples} real {recipe.name} test images, {args.steps} training steps each "
        f"(lower is better; floor = real vs real):\n\n| model | FD-EffNet | train time |\n|---|---:|---:|\n"
        + "".join(
            f"| {m} | {r['fd_effnet']:.1f} | {r['train_seconds'] / 60:.1f} min |\n" for m, r in result["modes"].items()
        )
        + f"| floor (real vs real) | {result['floor_real_vs_real']:.1f} | |\n"
    )
    print(table)
    write_result(f"adaptation_realism_{recipe.name}", result, table)


if __name__ == "__main__":
    main()
