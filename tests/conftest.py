"""Shared fixtures: offline environment, an isolated MLflow store, tiny seeded image trees."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.update(HF_HUB_OFFLINE="1", NO_ALBUMENTATIONS_UPDATE="1", DVC_NO_ANALYTICS="1", GX_ANALYTICS_ENABLED="false")
# Commands the tests start (stages, dvc) inherit one thread too: with two pytest workers on two
# cores, a second thread per process only makes them thrash.
os.environ.setdefault("OMP_NUM_THREADS", "1")

SIZE = 8
# Tests train models of a few thousand parameters: one thread beats two (no OpenMP hand-offs).
torch.set_num_threads(1)
REPO = Path(__file__).resolve().parent.parent


def _mirror() -> Path | None:
    """The real data mirror: $SYNTHDATA_DATA_MIRROR, else ../shared/data beside the checkout."""
    value = os.environ.get("SYNTHDATA_DATA_MIRROR")
    path = Path(value) if value else REPO.parent / "shared" / "data"
    return path if (path / "SHA256SUMS").is_file() else None


MIRROR = _mirror()


@pytest.fixture(scope="session", autouse=True)
def _no_repository_store(tmp_path_factory):
    """Module and session fixtures run before the per-test stores below: they get a store of their
    own, never the repository's ``mlruns/``."""
    previous = os.environ.get("SYNTHDATA_MLRUNS")
    os.environ["SYNTHDATA_MLRUNS"] = str(tmp_path_factory.mktemp("session-store") / "mlruns")
    yield
    if previous is None:
        os.environ.pop("SYNTHDATA_MLRUNS", None)
    else:
        os.environ["SYNTHDATA_MLRUNS"] = previous


@pytest.fixture(autouse=True)
def _isolated_stores(tmp_path_factory, monkeypatch):
    """Every test gets its own MLflow store and download cache, and no data mirror."""
    root = tmp_path_factory.mktemp("stores")
    monkeypatch.setenv("SYNTHDATA_MLRUNS", str(root / "mlruns"))
    monkeypatch.setenv("SYNTHDATA_CACHE", str(root / "cache"))
    monkeypatch.delenv("SYNTHDATA_DATA_MIRROR", raising=False)


def png_bytes(seed: int, size: int = SIZE, mode: str = "RGB") -> bytes:
    """A distinct random image (distinct seeds give distinct pixels, hence distinct sha256)."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    array = rng.integers(0, 256, size=(size, size, channels), dtype=np.uint8)
    image = Image.fromarray(array[:, :, 0] if channels == 1 else array, mode=mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_image_tree(
    root: Path, counts: dict[str, int], *, splits: tuple[str, ...] | None = None, seed: int = 0
) -> Path:
    """``root/[split/]class/NNN.png`` with ``counts[class]`` images per class (and split)."""
    offset = seed * 100_000
    for split in splits or (None,):
        for name, count in sorted(counts.items()):
            folder = root / split / name if split else root / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                offset += 1
                (folder / f"{i:03d}.png").write_bytes(png_bytes(offset))
    return root


def zip_tree(folder: Path, target: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    return target


@pytest.fixture
def image_tree(tmp_path) -> Path:
    """Three classes (a: 30, b: 20, c: 12 images), no split folders."""
    return make_image_tree(tmp_path / "tree", {"a": 30, "b": 20, "c": 12})


COLOURS = {"a": (200, 40, 40), "b": (40, 200, 40), "c": (40, 40, 200)}


def make_coloured_tree(root: Path, counts: dict[str, int], *, seed: int = 0) -> Path:
    """``root/class/NNN.png``: each class a colour of its own (COLOURS) plus noise, so that a
    classifier can tell the classes apart."""
    rng = np.random.default_rng(seed)
    for name, count in sorted(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (root / name / f"{i:03d}.png").write_bytes(coloured_png(name, rng))
    return root


def coloured_png(name: str, rng: np.random.Generator) -> bytes:
    array = np.clip(np.array(COLOURS[name])[None, None, :] + rng.normal(0, 25, (SIZE, SIZE, 3)), 0, 255).astype(
        np.uint8
    )
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def stage_runs():
    """The MLflow runs of stages (without the pipeline runs they are nested under)."""
    import mlflow

    runs = mlflow.search_runs(experiment_names=["synthdata"])
    if "tags.pipeline" in runs:
        runs = runs[runs["tags.pipeline"] != "true"].reset_index(drop=True)
    return runs


def paint_synthetic(synthetic: Path, colour_of, rows=None):
    """Repaint synthetic images with a class colour (``colour_of(label_name)``) and update
    their manifest hashes, so provenance stays consistent: a stand-in for a good generator."""
    from synthdata.data.manifest import read_manifest, write_manifest
    from synthdata.hashing import file_sha256

    frame = read_manifest(synthetic)
    rng = np.random.default_rng(1)
    for index in frame.index if rows is None else rows:
        path = synthetic / frame.loc[index, "relpath"]
        path.write_bytes(coloured_png(colour_of(frame.loc[index, "label_name"]), rng))
        frame.loc[index, "sha256"] = file_sha256(path)
    write_manifest(frame, synthetic)
    return frame


def make_sampling_setup(
    root: Path,
    sample: str = "{steps: 4, batch_size: 4, shard_size: 5}",
    validate: str = "{}",
    *,
    coloured: bool = False,
    finetune_steps: int = 2,
) -> Path:
    """A tiny base, a long-tailed 3-class dataset (8 px RGB, with a validation split), a recipe
    ``tiny.yaml`` and a LoRA adapter fine-tuned on it (2 steps): what sampling and validation need."""
    from synthdata.config.recipe import SplitSettings, load_recipe
    from synthdata.data.ingest import ingest
    from synthdata.data.sources import get_source
    from synthdata.models.base import UNetSettings, build_scheduler, build_unet, save_base
    from synthdata.stages.finetune import run_finetune

    tiny = UNetSettings(sample_size=16, block_out_channels=[8, 16], norm_num_groups=4, attention_head_dim=8)
    torch.manual_seed(0)
    save_base(build_unet(tiny, 4), build_scheduler(100), {"classes": list("pqrs"), "unet": vars(tiny)}, root / "base")
    (make_coloured_tree if coloured else make_image_tree)(root / "tree", {"a": 30, "b": 12, "c": 8})
    ingest(
        get_source("imagefolder", path=str(root / "tree"), dataset="d"),
        root / "d",
        split=SplitSettings(val_fraction=0.25, test_fraction=0.2),
    )
    (root / "tiny.yaml").write_text(
        "name: tiny\ndomain: medical\n"
        f"data: {{source: imagefolder, path: {root / 'tree'}}}\n"
        f"finetune:\n  base: {root / 'base'}\n  adapter: {{rank: 2, alpha: 2}}\n"
        f"  train: {{steps: {finetune_steps}, batch_size: 4, checkpoint_every: {finetune_steps}, log_every: 1, warmup_steps: 1}}\n"
        f"sample: {sample}\nvalidate: {validate}\n"
    )
    previous = os.environ.get("SYNTHDATA_MLRUNS")
    os.environ["SYNTHDATA_MLRUNS"] = str(root / "mlruns-setup")
    try:
        run_finetune(load_recipe(root / "tiny.yaml"), root / "d", root / "adapter", root / "adapter.work")
    finally:
        if previous is None:
            os.environ.pop("SYNTHDATA_MLRUNS")
        else:
            os.environ["SYNTHDATA_MLRUNS"] = previous
    return root


# --- The six long stages as commands, on one tiny project (fault injection, determinism) ---

SYNTHDATA = str(Path(sys.executable).parent / "synthdata")

# stage: (command, outputs it writes, state it may keep between attempts to resume from)
STAGE_COMMANDS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "ingest": (["data", "ingest", "--recipe", "../tiny.yaml", "--out", "d"], ["d"], [".staging-d"]),
    "pretrain": (["pretrain", "--recipe", "../tiny.yaml", "--dataset", "d", "--out", "base"], ["base"], ["base.work"]),
    "finetune": (
        ["finetune", "--recipe", "../tiny.yaml", "--dataset", "d", "--out", "adapter"]
        + ["--metrics", "metrics/finetune.json", "--plots", "metrics/plots"],
        ["adapter", "metrics/finetune.json", "metrics/plots/finetune-loss.csv"],
        ["adapter.work"],
    ),
    "sample": (
        [
            "sample",
            "--recipe",
            "../tiny.yaml",
            "--dataset",
            "d",
            "--adapter",
            "adapter",
            "--out",
            "synthetic",
            "--report",
            "reports/sample",
        ],
        ["synthetic", "reports/sample"],
        [".staging-synthetic"],
    ),
    "validate": (
        [
            "validate",
            "--recipe",
            "../tiny.yaml",
            "--dataset",
            "d",
            "--synthetic",
            "synthetic",
            "--adapter",
            "adapter",
            "--out",
            "validated",
            "--metrics",
            "metrics/validate.json",
            "--figures",
            "metrics/validate-figures.json",
            "--plots",
            "metrics/plots",
        ],
        ["validated", "metrics/validate.json", "metrics/validate-figures.json", "metrics/plots/validate-fill.csv"],
        [],
    ),
    "utility": (
        [
            "utility",
            "--recipe",
            "../tiny.yaml",
            "--dataset",
            "d",
            "--synthetic",
            "validated",
            "--work",
            "utility.work",
            "--metrics",
            "metrics/utility.json",
            "--figures",
            "metrics/utility-figures.json",
            "--plots",
            "metrics/plots",
        ],
        ["metrics/utility.json", "metrics/utility-figures.json"]
        + [f"metrics/plots/utility-{name}.csv" for name in ("arms", "recall", "curves")],
        ["utility.work"],
    ),
}


def stage_env(root: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "SYNTHDATA_MLRUNS": str(root / "mlruns"), **extra}


def run_stage(stage: str, root: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SYNTHDATA, *STAGE_COMMANDS[stage][0]],
        cwd=root,
        env=stage_env(root, **extra),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _sha256(path: Path) -> str:
    from synthdata.hashing import file_sha256

    return file_sha256(path)


def stage_files(root: Path, outputs: list[str]) -> dict[str, str]:
    found = {}
    for name in outputs:
        path = root / name
        for file in (
            [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []
        ):
            found[str(file.relative_to(root))] = _sha256(file)
    return found


@pytest.fixture(scope="session")
def stage_project(tmp_path_factory):
    """A tiny project run once through the six long stages as commands (``reference/``), and how
    many fault points each stage passed (``synthdata/faults.py``)."""
    from synthdata.models.base import UNetSettings, build_scheduler, build_unet, save_base

    root = tmp_path_factory.mktemp("stages")
    make_image_tree(root / "tree", {"a": 30, "b": 14, "c": 8})
    tiny = UNetSettings(sample_size=16, block_out_channels=[8, 16], norm_num_groups=4, attention_head_dim=8)
    torch.manual_seed(0)
    save_base(
        build_unet(tiny, 3),
        build_scheduler(100),
        {"classes": ["u", "v", "w"], "unet": asdict(tiny)},
        root / "fixed-base",
    )
    unet = "{sample_size: 16, block_out_channels: [8, 16], norm_num_groups: 4, attention_head_dim: 8}"
    (root / "tiny.yaml").write_text(
        "name: tiny\ndomain: medical\n"
        f"data: {{source: imagefolder, path: {root / 'tree'}, split: {{val_fraction: 0.25, test_fraction: 0.2}}}}\n"
        f"pretrain: {{unet: {unet}, train: {{steps: 6, batch_size: 4, checkpoint_every: 2, log_every: 1, warmup_steps: 1}}}}\n"
        f"finetune:\n  base: {root / 'fixed-base'}\n  adapter: {{rank: 2, alpha: 2}}\n"
        "  train: {steps: 6, batch_size: 4, checkpoint_every: 2, log_every: 1, warmup_steps: 1}\n"
        "sample: {steps: 2, batch_size: 4, shard_size: 5, max_images: 12}\n"
        "validate: {classifier: {steps: 10, batch_size: 8}, resamples: 2, filter: {enabled: false},\n"
        "           gates: {min_fill: null, max_near_copy_fraction: null, min_diversity_ratio: null}}\n"
        "utility: {arms: [real, real+synth], seeds: [0, 1], classifier: {steps: 4, batch_size: 8, width: 4},\n"
        "          budget: {epochs: 1, max_epochs: 2, curve_points: 2}}\n"
    )
    reference, counts = root / "reference", {}
    reference.mkdir()
    for stage in STAGE_COMMANDS:
        done = run_stage(stage, reference, SYNTHDATA_FAULT_COUNT=str(root / f"{stage}.count"))
        assert done.returncode == 0, f"{stage}: {done.stderr[-2000:]}"
        counts[stage] = int((root / f"{stage}.count").read_text())
    return root, counts


CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
"""Debian's chromium and chromium-driver, for the tests that open a page in a real browser."""


def headless_chromium(downloads: Path | None = None):
    """A headless chromium (selenium) that keeps the page's console log; downloads go to ``downloads``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    if downloads is not None:
        driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return driver
