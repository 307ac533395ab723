"""The bad-input corpus, paths: a name never escapes its folder, an output never eats an input.

Class names that cannot be one folder name (separators, ``..``, leading dots, control
characters, empty, too long, not UTF-8) are refused for every source; an output that is,
contains or lies inside an input, another output or the working folder, that is ``/``, or an
existing file where a folder goes (and the reverse) is refused before any work, for every
command that writes; recipe names given on the command line follow the recipe-name rule; and
Ctrl-C prints one ``interrupted`` line. Each refusal: exit 1, one ``error:`` line naming the
file (or both paths) and the problem, and nothing written under the output's name.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SYNTHDATA, make_image_tree, stage_env
from test_bad_input import run_cli, write_recipe


def one_error_line(code: int, err: str) -> str:
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- Class names ---------------------------------------------------------------------------------

BAD_NAMES = {
    "dotdot-escape": ("../../../../escaped", "path separator"),
    "nested": ("a/b", "path separator"),
    "absolute": ("/abs", "path separator"),
    "backslash": ("a\\b", "path separator"),
    "empty": ("", "it is empty"),
    "dot": (".", "starts with '.'"),
    "dotdot": ("..", "starts with '.'"),
    "hidden": (".hidden", "starts with '.'"),
    "nul": ("a\x00b", "control character"),
    "newline": ("a\nb", "control character"),
    "too-long": ("x" * 256, "256 bytes long"),
}


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_npz_class_name_that_is_not_a_folder_name(case, tmp_path, monkeypatch, capsys):
    name, reason = BAD_NAMES[case]
    path = tmp_path / "scan.npz"
    images, labels = np.zeros((4, 8, 8), np.uint8), np.array([[0], [1], [0], [1]], np.uint8)
    images[:, 0, 0] = np.arange(4)
    np.savez(path, train_images=images, train_labels=labels, test_images=images[:2] + 10, test_labels=labels[:2])
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: scan\ndomain: medical\ndata:\n  source: npz\n  path: {path}\n  classes: [{json.dumps(name)}, y]\n"
    )
    out = tmp_path / "x" / "y" / "z" / "o"
    line = one_error_line(
        *run_cli(["data", "ingest", "--recipe", str(recipe), "--out", str(out)], monkeypatch, capsys)[::2]
    )
    assert "scan.npz" in line and repr(name) in line and reason in line
    assert not out.exists() and not list(out.parent.glob(".staging-*"))
    assert not [p for p in tmp_path.rglob("*") if p.name in ("escaped", "abs", "b")], "a class name made a folder"


def _non_utf8_folder(tree: Path) -> None:
    folder = os.fsencode(tree) + b"/caf\xe9"
    os.mkdir(folder)
    shutil.copy(tree / "a" / "000.png", os.fsdecode(folder + b"/000.png"))


FOLDER_NAMES = {
    "newline": ("a\nb", "control character", "a\\nb/000.png"),
    "backslash": ("a\\b", "path separator", "a\\b/000.png"),
    "control": ("a\x01b", "control character", "a\\x01b/000.png"),
    "line-separator": ("a\u2028b", "control character", "a\\u2028b/000.png"),
}


@pytest.mark.parametrize("case", [*sorted(FOLDER_NAMES), "not-utf8"])
def test_imagefolder_folder_name_that_is_not_a_folder_name(case, tmp_path, monkeypatch, capsys):
    tree = make_image_tree(tmp_path / "tree", {"a": 3, "b": 3})
    if case == "not-utf8":
        _non_utf8_folder(tree)
        reason, where = "not valid UTF-8", "caf\\udce9/000.png"
    else:
        name, reason, where = FOLDER_NAMES[case]
        (tree / name).mkdir()
        shutil.copy(tree / "a" / "000.png", tree / name / "000.png")
    out = tmp_path / "o"
    line = one_error_line(
        *run_cli(
            ["data", "ingest", "--recipe", str(write_recipe(tmp_path / "r.yaml", tree)), "--out", str(out)],
            monkeypatch,
            capsys,
        )[::2]
    )
    assert "class name" in line and reason in line and where in line
    assert not out.exists()


def test_imagefolder_hidden_folder_is_left_out_not_a_class(tmp_path, monkeypatch, capsys):
    """Accepted: a folder whose name starts with '.' (.git, .thumbnails) is not a class folder."""
    tree = make_image_tree(tmp_path / "tree", {"a": 3, "b": 3, ".thumbnails": 2})
    out = tmp_path / "o"
    code, _, err = run_cli(
        ["data", "ingest", "--recipe", str(write_recipe(tmp_path / "r.yaml", tree)), "--out", str(out)],
        monkeypatch,
        capsys,
    )
    assert code == 0, err
    assert json.loads((out / "card.json").read_text())["classes"] == ["a", "b"]


# --- Outputs against inputs ----------------------------------------------------------------------


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A working folder ``work/`` holding an image tree, its recipe and stand-ins for every
    folder a command reads (the guard runs before any of them is opened)."""
    work = tmp_path / "work"
    tree = make_image_tree(work / "raw" / "tree", {"a": 3, "b": 3})
    write_recipe(work / "r.yaml", tree)
    (work / "conf").mkdir()
    write_recipe(work / "conf" / "r.yaml", tree)
    for name in ("d", "adapter", "synthetic", "pool", "base", "metrics"):
        (work / name).mkdir()
        (work / name / "keep.txt").write_text(name)
    (work / "afile").write_text("precious")
    monkeypatch.chdir(work)
    return work


INGEST = ["data", "ingest", "--recipe", "r.yaml", "--out"]

OUTPUT_CASES = {
    "ingest-out-is-data-path": (INGEST + ["raw/tree"], "--out raw/tree is data.path {work}/raw/tree"),
    "ingest-out-contains-data-path": (INGEST + ["raw"], "--out raw contains data.path {work}/raw/tree"),
    "ingest-out-inside-data-path": (INGEST + ["raw/tree/a/new"], "--out raw/tree/a/new lies inside data.path"),
    "ingest-out-contains-recipe": (
        ["data", "ingest", "--recipe", "conf/r.yaml", "--out", "conf"],
        "--out conf contains --recipe conf/r.yaml",
    ),
    "ingest-out-is-cwd": (INGEST + ["{work}"], "is the working folder"),
    "ingest-out-dot": (INGEST + ["."], "--out . is the working folder"),
    "ingest-out-contains-cwd": (INGEST + [".."], "--out .. contains the working folder"),
    "ingest-out-root": (INGEST + ["/"], "--out / is the root folder"),
    "ingest-out-existing-file": (INGEST + ["afile"], "--out afile exists and is not a folder"),
    "ingest-out-symlink-to-data": (INGEST + ["link"], "--out link is data.path"),
    "ingest-out-is-recipe": (INGEST + ["r.yaml"], "--out r.yaml exists and is not a folder"),
    "longtail-out-is-parent": (
        ["data", "longtail", "--recipe", "r.yaml", "--parent", "d", "--out", "d"],
        "--out d is --parent d",
    ),
    "validate-data-metrics-folder": (
        ["data", "validate", "d", "--metrics", "metrics"],
        "--metrics metrics is an existing folder",
    ),
    "validate-data-metrics-inside": (
        ["data", "validate", "d", "--metrics", "d/data.json"],
        "--metrics d/data.json lies inside dataset folder d",
    ),
    "pretrain-out-is-dataset": (
        ["pretrain", "--recipe", "r.yaml", "--dataset", "d", "--out", "d"],
        "--out d is --dataset d",
    ),
    "base-card-base-is-corpus": (["base-card", "--base", "d", "--corpus", "d"], "--base d is --corpus d"),
    "finetune-out-is-dataset": (
        ["finetune", "--recipe", "r.yaml", "--dataset", "d", "--out", "d"],
        "--out d is --dataset d",
    ),
    "finetune-workdir-inside-dataset": (
        ["finetune", "--recipe", "r.yaml", "--dataset", "d", "--out", "m", "--workdir", "d/w"],
        "--workdir d/w lies inside --dataset d",
    ),
    "finetune-out-is-base": (
        ["finetune", "--recipe", "r.yaml", "--dataset", "d", "--out", "base", "--base", "base"],
        "--out base is --base base",
    ),
    "sample-out-is-dataset": (
        ["sample", "--recipe", "r.yaml", "--dataset", "d", "--adapter", "adapter", "--out", "d"],
        "--out d is --dataset d",
    ),
    "sample-out-is-adapter": (
        ["sample", "--recipe", "r.yaml", "--dataset", "d", "--adapter", "adapter", "--out", "adapter"],
        "--out adapter is --adapter adapter",
    ),
    "sample-report-inside-out": (
        ["sample", "--recipe", "r.yaml", "--dataset", "d", "--adapter", "adapter", "--out", "s", "--report", "s/r"],
        "--out s contains --report s/r",
    ),
    "sample-report-is-dataset": (
        ["sample", "--recipe", "r.yaml", "--dataset", "d", "--dry-run", "--report", "d"],
        "--report d is --dataset d",
    ),
    "validate-out-is-synthetic": (
        [
            "validate",
            "--recipe",
            "r.yaml",
            "--dataset",
            "d",
            "--synthetic",
            "synthetic",
            "--adapter",
            "adapter",
            "--out",
            "synthetic",
        ],
        "--out synthetic is --synthetic synthetic",
    ),
    "validate-out-is-pool": (
        [
            "validate",
            "--recipe",
            "r.yaml",
            "--dataset",
            "d",
            "--synthetic",
            "synthetic",
            "--adapter",
            "adapter",
            "--pool",
            "pool",
            "--out",
            "pool",
        ],
        "--out pool is --pool pool",
    ),
    "validate-metrics-folder": (
        [
            "validate",
            "--recipe",
            "r.yaml",
            "--dataset",
            "d",
            "--synthetic",
            "synthetic",
            "--adapter",
            "adapter",
            "--out",
            "v",
            "--metrics",
            "metrics",
        ],
        "--metrics metrics is an existing folder",
    ),
    "utility-work-is-dataset": (
        ["utility", "--recipe", "r.yaml", "--dataset", "d", "--work", "d"],
        "--work d is --dataset d",
    ),
    "utility-metrics-is-recipe": (
        ["utility", "--recipe", "r.yaml", "--dataset", "d", "--metrics", "r.yaml"],
        "--metrics r.yaml is --recipe r.yaml",
    ),
    "utility-report-inside-synthetic": (
        ["utility", "--recipe", "r.yaml", "--dataset", "d", "--synthetic", "synthetic", "--report", "synthetic/r"],
        "--report synthetic/r lies inside --synthetic synthetic",
    ),
    "report-index-is-folder": (
        ["report", "x", "--metrics", "metrics", "--reports", "rep"],
        "--reports rep/index.html is an existing folder",
    ),
}


@pytest.mark.parametrize("case", sorted(OUTPUT_CASES))
def test_output_that_would_destroy_an_input_is_refused(case, project, monkeypatch, capsys):
    argv, message = OUTPUT_CASES[case]
    (project / "link").symlink_to(project / "raw" / "tree")
    (project / "rep" / "index.html").mkdir(parents=True)
    before = files_under(project)
    argv = [a.format(work=project) for a in argv]
    line = one_error_line(*run_cli(argv, monkeypatch, capsys)[::2])
    assert message.format(work=project) in line
    assert files_under(project) == before, "the refused command changed the working folder"
    assert not [
        p.name for p in project.iterdir() if p.name.startswith((".old-", ".staging-")) or p.name.endswith(".lock")
    ]
    assert not Path("/..lock").exists()


def test_output_beside_its_inputs_is_accepted(project, monkeypatch, capsys):
    code, _, err = run_cli(INGEST + ["datasets/mine"], monkeypatch, capsys)
    assert code == 0, err
    assert (project / "datasets" / "mine" / "manifest.parquet").is_file() and (
        project / "raw" / "tree" / "a" / "000.png"
    ).is_file()


# --- Recipe names on the command line ------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["report", "x'y"], "x'y"),
        (["report", "../esc"], "../esc"),
        (["report", "ok\n"], "ok\n"),
        (["benchmark", "--recipes", "pbc,../esc"], "../esc"),
    ],
    ids=["report-quote", "report-dotdot", "report-newline", "benchmark-dotdot"],
)
def test_name_that_is_not_a_recipe_name(argv, name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = one_error_line(*run_cli(argv, monkeypatch, capsys)[::2])
    assert repr(name) in line and "recipe name" in line
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / "esc").exists()


def test_builtin_source_that_needs_a_path(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = one_error_line(*run_cli(["data", "ingest", "imagefolder"], monkeypatch, capsys)[::2])
    assert "'imagefolder'" in line and "data.path is required" in line and "--recipe" in line
    assert list(tmp_path.iterdir()) == []


# --- Ctrl-C --------------------------------------------------------------------------------------


def test_sigint_prints_one_interrupted_line_and_exits_130(tmp_path):
    from synthdata.config.recipe import SplitSettings
    from synthdata.data.ingest import ingest
    from synthdata.data.sources import get_source

    make_image_tree(tmp_path / "tree", {"a": 8, "b": 8})
    ingest(
        get_source("imagefolder", path=str(tmp_path / "tree"), dataset="d"),
        tmp_path / "d",
        split=SplitSettings(val_fraction=0.0, test_fraction=0.25),
    )
    unet = "{sample_size: 16, block_out_channels: [8, 16], norm_num_groups: 4, attention_head_dim: 8}"
    (tmp_path / "r.yaml").write_text(
        f"name: tiny\ndomain: medical\ndata: {{source: imagefolder, path: {tmp_path / 'tree'}}}\n"
        f"pretrain: {{unet: {unet}, train: {{steps: 100000, batch_size: 2, checkpoint_every: 1, log_every: 1, warmup_steps: 1}}}}\n"
    )
    process = subprocess.Popen(
        [SYNTHDATA, "pretrain", "--recipe", "r.yaml", "--dataset", "d", "--out", "base"],
        cwd=tmp_path,
        env=stage_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while (
            not any((tmp_path / "base.work").glob("*/checkpoint.json"))
            and process.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        assert process.poll() is None, process.stderr.read()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted" and err.count("interrupted") == 1, err
    assert "Traceback" not in err and not (tmp_path / "base").exists()


def test_dataset_card_with_a_class_name_that_escapes_is_refused_by_the_next_stage(tmp_path, monkeypatch, capsys):
    tree = make_image_tree(tmp_path / "tree", {"a": 6, "b": 6})
    dataset = tmp_path / "datasets" / "mine"
    code, _, err = run_cli(
        ["data", "ingest", "--recipe", str(write_recipe(tmp_path / "r.yaml", tree)), "--out", str(dataset)],
        monkeypatch,
        capsys,
    )
    assert code == 0, err
    card = json.loads((dataset / "card.json").read_text())
    card["classes"] = ["../../escaped", "b"]
    (dataset / "card.json").write_text(json.dumps(card))
    out = tmp_path / "datasets" / "mine-lt"
    line = one_error_line(
        *run_cli(
            ["data", "longtail", "--recipe", str(tmp_path / "r.yaml"), "--parent", str(dataset), "--out", str(out)],
            monkeypatch,
            capsys,
        )[::2]
    )
    assert "card.json" in line and "'../../escaped' cannot be a folder name" in line
    assert not out.exists() and not (tmp_path / "escaped").exists()
