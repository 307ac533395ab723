"""Sampling speed and realism: DPM-Solver++ (20 steps) against ancestral DDPM (every training step).

Both samplers run in the same process, on the same adapter, the same class-balanced labels, the
same per-image seeds, batch size and guidance. Each set is compared (FD-EffNet) with the same
real *test* images of the domain, beside the floor: the distance between two disjoint real test
samples of the same size. With fewer samples than the 1,280 feature dimensions the Fréchet
distance is biased upwards for every set alike, so compare the rows with each other and with
the floor, not with distances measured at another size.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import machine, write_result

from synthdata.config.recipe import load_recipe
from synthdata.data.tensors import load_split, to_uint8
from synthdata.sampling.generate import generate
from synthdata.sampling.model import load_sampling_model
from synthdata.validation.features import EffNetFeatures
from synthdata.validation.frechet import frechet_distance


def run(
    model, labels: torch.Tensor, scheduler: str, steps: int, guidance: float, batch: int
) -> tuple[torch.Tensor, float]:
    out, started = [], time.perf_counter()
    for start in range(0, len(labels), batch):
        chunk = labels[start : start + batch]
        generators = [torch.Generator().manual_seed(start + i) for i in range(len(chunk))]
        samples = generate(
            model.backbone,
            model.scheduler,
            chunk,
            shape=model.shape,
            scheduler=scheduler,
            steps=steps,
            guidance=guidance,
            generator=generators,
        )
        out.append(to_uint8(samples))
        print(f"{scheduler}: {start + len(chunk)}/{len(labels)}", flush=True)
    return torch.cat(out), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="pbc")
    parser.add_argument("--adapter", default=None, help="[models/<recipe>/adapter]")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--guidance", type=float, default=2.0)
    args = parser.parse_args()
    recipe = load_recipe(f"recipes/{args.recipe}.yaml")
    model = load_sampling_model(args.adapter or f"models/{recipe.name}/adapter", recipe.finetune.base)
    channels, size, _ = model.shape
    real, _, classes = load_split(Path("datasets") / f"{recipe.name}-lt", "test", size=size, channels=channels)
    order = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))
    real_a, real_b = real[order[: args.samples]], real[order[args.samples : 2 * args.samples]]
    labels = torch.arange(args.samples) % len(classes)
    features = EffNetFeatures()
    f_a = features(real_a)
    result = {
        "recipe": recipe.name,
        "samples": args.samples,
        "batch": args.batch,
        "guidance": args.guidance,
        "floor_real_vs_real": frechet_distance(features(real_b), f_a),
        "samplers": {},
        "machine": machine(),
    }
    train_steps = int(model.scheduler.config.num_train_timesteps)
    for name, steps in (("dpm-solver++", 20), ("ddpm", train_steps)):
        fake, seconds = run(model, labels, name, steps, args.guidance, args.batch)
        result["samplers"][name] = {
            "steps": steps,
            "seconds": seconds,
            "images_per_second": args.samples / seconds,
            "fd_effnet": frechet_distance(features(fake), f_a),
        }
        print(name, result["samplers"][name], flush=True)
    dpm, ddpm = result["samplers"]["dpm-solver++"], result["samplers"]["ddpm"]
    result["speedup"] = dpm["images_per_second"] / ddpm["images_per_second"]
    table = (
        f"{recipe.name}: {args.samples} images per sampler, batch {args.batch}, guidance {args.guidance}; FD-EffNet "
        f"against {args.samples} real test images (lower is better)\n\n"
        "| sampler | steps | img/s | FD-EffNet |\n|---|---:|---:|---:|\n"
        + "".join(
            f"| {n} | {r['steps']} | {r['images_per_second']:.2f} | {r['fd_effnet']:.1f} |\n"
            for n, r in result["samplers"].items()
        )
        + f"| floor (real vs real) | | | {result['floor_real_vs_real']:.1f} |\n\n"
        f"DPM-Solver++ is **{result['speedup']:.1f}x** faster than DDPM.\n"
    )
    print(table)
    write_result(f"sampling_speed_{recipe.name}", result, table)


if __name__ == "__main__":
    main()
