"""Measure a base's realism on its corpus's real test split and write its model card."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from synthdata.atomic import write_text
from synthdata.data.card import read_card
from synthdata.data.tensors import load_split, to_uint8
from synthdata.models.backbone import PixelBackbone
from synthdata.models.base import BASE_RECORD, load_base
from synthdata.sampling.generate import generate
from synthdata.validation.features import FEATURE_NAME, EffNetFeatures
from synthdata.validation.frechet import frechet_distance


def measure_realism(base_folder: Path, corpus: Path, *, samples: int, guidance: float, seed: int = 0) -> dict:
    """FD-EffNet of ``samples`` class-balanced generations against as many real test images,
    beside the floor: the same distance between two disjoint real test samples of that size."""
    base = load_base(base_folder)
    unet = base.record["unet"]
    real, _, classes = load_split(corpus, "test", size=unet["sample_size"], channels=unet["channels"])
    if len(real) < 2 * samples:
        raise ValueError(f"{corpus}: {len(real)} test images, need {2 * samples} for the measurement and its floor")
    order = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))
    real_a, real_b = real[order[:samples]], real[order[samples : 2 * samples]]
    labels = torch.arange(samples) % len(classes)
    backbone = PixelBackbone(base.unet, base.null_class)
    generated = []
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, samples, 250):
        batch = generate(
            backbone,
            base.scheduler,
            labels[start : start + 250],
            shape=(unet["channels"], unet["sample_size"], unet["sample_size"]),
            guidance=guidance,
            generator=generator,
        )
        generated.append(to_uint8(batch))
    features = EffNetFeatures()
    f_real_a, f_real_b, f_fake = features(real_a), features(real_b), features(torch.cat(generated))
    return {
        "metric": f"FD-{FEATURE_NAME}",
        "feature_space": "ImageNet EfficientNet-Lite0, 1280-d pooled, 128 px input",
        "value": round(frechet_distance(f_fake, f_real_a), 3),
        "floor_real_vs_real": round(frechet_distance(f_real_b, f_real_a), 3),
        "samples": samples,
        "sampler": "DPM-Solver++ 20 steps",
        "guidance": guidance,
        "reference": f"{read_card(corpus).name} test split",
    }


def model_card(record: dict, realism: dict | None) -> str:
    unet = record["unet"]
    lines = [
        "# synthdata default base",
        "",
        "A class-conditional pixel-space diffusion model (diffusers `UNet2DModel`), the base that "
        "synthdata adapts to each domain with a LoRA adapter. Not a domain model: it has only seen the "
        "generic corpus below.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | UNet2DModel, {unet['sample_size']}x{unet['sample_size']}x{unet['channels']}, "
        f"channels {unet['block_out_channels']}, {unet['layers_per_block']} layer(s) per block, "
        f"self-attention on the lowest {unet['attention_levels']} level(s), class table of "
        f"{len(record['classes'])} classes + 1 null row |",
        f"| parameters | {record['parameters']:,} |",
        "| objective | noise prediction (epsilon), cosine schedule, 1000 steps, 10% label dropout for CFG, EMA weights |",
        f"| corpus | {record['corpus']} train split, {record['train_images']:,} images, manifest sha256 `{record['corpus_manifest_sha256']}` |",
        f"| training | {record['steps']:,} steps x batch {record['train']['batch_size']}, lr {record['train']['learning_rate']}, "
        f"EMA {record['train']['ema_decay']} |",
        f"| wall time | {record['train_seconds'] / 60:.1f} min on {record['hardware']} |",
        f"| final loss | {record['final_loss']:.4f} |",
        f"| weights sha256 | `{record.get('sha256', '?')}` |",
        f"| made by | synthdata {record['created_by']['synthdata']}, commit {record['created_by']['git_commit']} |",
    ]
    if realism:
        lines += [
            "",
            "## Realism",
            "",
            f"{realism['metric']} ({realism['feature_space']}) of {realism['samples']} class-balanced samples "
            f"({realism['sampler']}, guidance {realism['guidance']}) against as many images of the "
            f"{realism['reference']}: **{realism['value']}**. Floor (two disjoint real samples of the same size): "
            f"{realism['floor_real_vs_real']}. These are not Inception FID figures and are not comparable to "
            "published FID.",
        ]
    lines += [
        "",
        "Samples (one row per class, fixed seed):",
        "",
        "![samples](samples.png)",
        "",
        "Training loss:",
        "",
        "![loss](loss.png)",
        "",
    ]
    return "\n".join(lines)


def write_card(base_folder: Path, corpus: Path, *, samples: int, guidance: float) -> dict:
    """Measure, then write ``README.md`` and the ``realism`` entry of ``base.json`` atomically."""
    realism = measure_realism(base_folder, corpus, samples=samples, guidance=guidance)
    path = base_folder / BASE_RECORD
    record = json.loads(path.read_text()) | {"realism": realism}
    write_text(base_folder / BASE_RECORD, json.dumps(record, indent=2) + "\n")
    write_text(base_folder / "README.md", model_card(record, realism))
    return realism
