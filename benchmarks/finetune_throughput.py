"""Fine-tune throughput: synthdata's training loop against a plain diffusers+peft loop.

Same base, same LoRA settings, same data (the default recipe's long-tailed train split), same
batch size, same number of steps; the two loops alternate (A B A B) in one process and the
best round of each is reported. synthdata's loop does more per step (EMA, seeded batch order,
a checkpoint at the end); the goal is that this costs nothing measurable (ratio >= 1.0).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import torch
from common import machine, write_result

from synthdata.config.recipe import load_recipe
from synthdata.data.tensors import load_split
from synthdata.models.adapter import adapt
from synthdata.models.backbone import PixelBackbone
from synthdata.models.base import load_base
from synthdata.training.loop import train_denoiser


def reference_loop(model, images, labels, scheduler, steps: int, batch_size: int, lr: float) -> float:
    """The loop of diffusers' LoRA training examples, reduced to its core; returns img/s."""
    from diffusers import DDPMScheduler

    noise_scheduler = DDPMScheduler.from_config(scheduler.config)
    params = list(model.trainable().values())
    optimizer = torch.optim.AdamW(params, lr=lr)
    model.unet.train()
    started = time.perf_counter()
    for _ in range(steps):
        index = torch.randint(0, len(images), (batch_size,))
        clean = images[index].float() / 127.5 - 1
        noise = torch.randn_like(clean)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (batch_size,))
        noisy = noise_scheduler.add_noise(clean, noise, timesteps)
        prediction = model.unet(noisy, timesteps, class_labels=labels[index]).sample
        loss = torch.nn.functional.mse_loss(prediction, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps * batch_size / (time.perf_counter() - started)


def synthdata_loop(model, images, labels, scheduler, settings, workdir: Path) -> float:
    result = train_denoiser(
        PixelBackbone(model.unet, model.null_class), model.trainable(), images, labels, scheduler, settings, workdir
    )
    return result.images_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="recipes/pbc.yaml")
    parser.add_argument("--dataset", default="datasets/pbc-lt")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    from dataclasses import replace

    settings = replace(recipe.finetune.train, steps=args.steps, checkpoint_every=args.steps, log_every=args.steps)
    base = load_base(recipe.finetune.base)
    images, labels, classes = load_split(
        args.dataset, "train", size=base.record["unet"]["sample_size"], channels=base.record["unet"]["channels"]
    )
    rates: dict[str, list[float]] = {"synthdata": [], "reference": []}
    for round_index in range(args.rounds):
        for name in ("reference", "synthdata"):
            model = adapt(load_base(recipe.finetune.base), classes, recipe.finetune.adapter, seed=0)
            with TemporaryDirectory() as work:
                if name == "synthdata":
                    rates[name].append(synthdata_loop(model, images, labels, base.scheduler, settings, Path(work)))
                else:
                    rates[name].append(
                        reference_loop(
                            model,
                            images,
                            labels,
                            base.scheduler,
                            args.steps,
                            settings.batch_size,
                            settings.learning_rate,
                        )
                    )
            print(f"round {round_index}: {name} {rates[name][-1]:.1f} img/s", flush=True)
    best = {k: max(v) for k, v in rates.items()}
    result = {
        "recipe": recipe.name,
        "mode": recipe.finetune.adapter.mode,
        "batch_size": settings.batch_size,
        "steps_per_round": args.steps,
        "rounds": rates,
        "best_img_per_s": best,
        "ratio": best["synthdata"] / best["reference"],
        "machine": machine(),
    }
    table = (
        "| loop | best img/s | rounds |\n|---|---:|---|\n"
        + "".join(f"| {k} | {best[k]:.1f} | {', '.join(f'{r:.1f}' for r in v)} |\n" for k, v in rates.items())
        + f"\nratio synthdata / reference: **{result['ratio']:.2f}x** (goal >= 1.0), batch {settings.batch_size}, "
        f"{args.steps} steps per round, {recipe.finetune.adapter.mode}, {machine()['cpu']} {machine()['threads']} threads\n"
    )
    print(table)
    write_result("finetune_throughput", result, table)


if __name__ == "__main__":
    main()
