"""Sizes other than 32 px end to end: a 64 px base pretrained by ``synthdata pretrain``, then
fine-tuned, sampled, validated and measured downstream at 64 px, as commands on a tiny project."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import SYNTHDATA, stage_env
from PIL import Image

from synthdata.data.card import read_card
from synthdata.data.manifest import read_manifest


def _tree(root: Path, size: int) -> Path:
    """Three classes of ``size`` px RGB images (a colour each, plus noise)."""
    rng = np.random.default_rng(0)
    for name, colour, count in (("r", (200, 40, 40), 20), ("g", (40, 200, 40), 12), ("b", (40, 40, 200), 8)):
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = np.clip(np.array(colour) + rng.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")
    return root


def _run(args: list[str], root: Path) -> str:
    done = subprocess.run(
        [SYNTHDATA, *args], cwd=root, env=stage_env(root), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


@pytest.mark.slow
def test_a_64_px_pipeline_end_to_end(tmp_path):
    unet = "{sample_size: 64, block_out_channels: [8, 16], norm_num_groups: 4, attention_head_dim: 8}"
    steps = "{steps: 4, batch_size: 4, checkpoint_every: 2, log_every: 1, warmup_steps: 1}"
    (tmp_path / "tiny64.yaml").write_text(
        "name: tiny64\ndomain: generic\n"
        f"data: {{source: imagefolder, path: {_tree(tmp_path / 'tree', 80)}, image_size: 64,"
        " split: {val_fraction: 0.25, test_fraction: 0.2}}\n"
        f"pretrain: {{unet: {unet}, train: {steps}}}\n"
        f"finetune:\n  base: base\n  adapter: {{rank: 2, alpha: 2}}\n  train: {steps}\n"
        "sample: {steps: 2, batch_size: 4, shard_size: 5, max_images: 8}\n"
        "validate: {classifier: {steps: 6, batch_size: 8}, resamples: 2, filter: {enabled: false},\n"
        "           gates: {min_fill: null, max_near_copy_fraction: null, min_diversity_ratio: null}}\n"
        "utility: {arms: [real, real+synth], seeds: [0], classifier: {steps: 4, batch_size: 8, width: 4},\n"
        "          budget: {epochs: 1, max_epochs: 2, curve_points: 2}}\n"
    )
    recipe = ["--recipe", "tiny64.yaml"]
    _run(["data", "ingest", *recipe, "--out", "d"], tmp_path)
    card = read_card(tmp_path / "d")
    assert (card.width, card.height) == (64, 64) and card.resize["native_sizes"] == {"80x80": 40}
    _run(["pretrain", *recipe, "--dataset", "d", "--out", "base"], tmp_path)
    assert json.loads((tmp_path / "base" / "unet" / "config.json").read_text())["sample_size"] == 64
    _run(["finetune", *recipe, "--dataset", "d", "--out", "adapter"], tmp_path)
    assert json.loads((tmp_path / "adapter" / "adapter.json").read_text())["sample_size"] == 64
    _run(["sample", *recipe, "--dataset", "d", "--adapter", "adapter", "--out", "synthetic"], tmp_path)
    synthetic = read_manifest(tmp_path / "synthetic")
    assert set(zip(synthetic["width"], synthetic["height"], strict=True)) == {(64, 64)}
    for relpath in synthetic["relpath"]:
        with Image.open(tmp_path / "synthetic" / relpath) as image:
            assert image.size == (64, 64)
    _run(
        ["validate", *recipe, "--dataset", "d", "--synthetic", "synthetic", "--adapter", "adapter"]
        + ["--out", "validated", "--figures", "validate.json"],
        tmp_path,
    )
    figures = json.loads((tmp_path / "validate.json").read_text())
    assert figures["image_size"] == 64
    _run(
        ["utility", *recipe, "--dataset", "d", "--synthetic", "validated", "--work", "u.work"]
        + ["--figures", "utility.json"],
        tmp_path,
    )
    assert json.loads((tmp_path / "utility.json").read_text())["image_size"] == 64
