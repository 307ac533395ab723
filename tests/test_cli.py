"""Bad input through the command line: one error line, non-zero exit, nothing published."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_image_tree, png_bytes, stage_runs, zip_tree
from synthdata import cli

SYNTHDATA = str(Path(sys.executable).parent / "synthdata")


def run_cli(argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["synthdata", *argv])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_recipe(path: Path, data_path: Path, extra: str = "") -> Path:
    path.write_text(f"name: mine\ndomain: medical\ndata:\n  source: imagefolder\n  path: {data_path}\n{extra}")
    return path


def _png16() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(buffer, format="PNG")
    return buffer.getvalue()


BAD_FILES = {
    "corrupt": (lambda: b"\x89PNG\r\n\x1a\n this is not really a png", "corrupt or truncated"),
    "truncated": (lambda: png_bytes(5)[:60], "corrupt or truncated"),
    "zero-byte": (lambda: b"", "zero-byte file"),
    "16-bit": (_png16, "not 8-bit"),
    "rgba": (lambda: png_bytes(6, mode="RGBA"), "wrong channel count 4"),
    "grey-in-rgb": (lambda: png_bytes(7, mode="L"), "wrong channel count 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_image_file(case, tmp_path, monkeypatch, capsys):
    tree = make_image_tree(tmp_path / "tree", {"a": 3, "b": 3})
    make_bytes, reason = BAD_FILES[case]
    (tree / "b" / "zz-bad.png").write_bytes(make_bytes())
    recipe = write_recipe(tmp_path / "r.yaml", tree, "  channels: 3\n")
    out = tmp_path / "datasets" / "mine"
    code, _, err = run_cli(["data", "ingest", "--recipe", str(recipe), "--out", str(out)], monkeypatch, capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "b/zz-bad.png" in lines[0] and reason in lines[0]
    assert not out.exists()


def _zip_with(tmp_path: Path, member: zipfile.ZipInfo | str, data: bytes = b"x") -> Path:
    tree = make_image_tree(tmp_path / "tree", {"a": 2, "b": 2})
    archive = zip_tree(tree, tmp_path / "data.zip")
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr(member, data)
    return archive


def _symlink_member() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("a/link.png")
    info.external_attr = 0o120777 << 16
    return info


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("../escape.png", "escapes the archive with '..'"),
        ("a/../../escape.png", "escapes the archive with '..'"),
        ("/etc/absolute.png", "has an absolute path"),
        (_symlink_member(), "is a symbolic link"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink"],
)
def test_unsafe_archive_member(member, reason, tmp_path, monkeypatch, capsys):
    archive = _zip_with(tmp_path, member, png_bytes(42))
    recipe = write_recipe(tmp_path / "r.yaml", archive)
    out = tmp_path / "datasets" / "mine"
    code, _, err = run_cli(["data", "ingest", "--recipe", str(recipe), "--out", str(out)], monkeypatch, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "data.zip" in err and reason in err
    assert not out.exists() and not (tmp_path / "escape.png").exists()


def test_label_outside_declared_set(tmp_path, monkeypatch, capsys):
    tree = make_image_tree(tmp_path / "tree", {"a": 2, "b": 2, "intruder": 1})
    recipe = write_recipe(tmp_path / "r.yaml", tree, "  classes: [a, b]\n")
    code, _, err = run_cli(["data", "ingest", "--recipe", str(recipe), "--out", str(tmp_path / "o")], monkeypatch, capsys)
    assert code == 1 and "intruder/000.png: label 'intruder' is outside the declared set" in err
    assert not (tmp_path / "o").exists()


def test_checksum_mismatch_and_missing_mirror_file(tmp_path, monkeypatch, capsys):
    mirror = tmp_path / "mirror"
    (mirror / "medmnist").mkdir(parents=True)
    monkeypatch.setenv("SYNTHDATA_DATA_MIRROR", str(mirror))
    code, _, err = run_cli(["data", "fetch", "breastmnist"], monkeypatch, capsys)
    assert code == 1 and "medmnist/breastmnist.npz: missing mirror file" in err
    (mirror / "medmnist" / "breastmnist.npz").write_bytes(b"not the real file")
    code, _, err = run_cli(["data", "ingest", "breastmnist", "--out", str(tmp_path / "b")], monkeypatch, capsys)
    assert code == 1 and "breastmnist.npz: checksum mismatch" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\ndomain: medical\ndata: {source: pbc}\nlongtail: {imbalanse: 10}\n", "unknown key 'longtail.imbalanse' (did you mean 'imbalance'?)"),
        ("name: x\ndomain: medical\ndata: {source: pbc\n", "malformed YAML"),
        ("name: x\ndomain: medical\ndata: {source: pbc}\nlongtail: {imbalance: lots}\n", "'longtail.imbalance' must be a number"),
    ],
    ids=["misspelled", "malformed", "wrong-type"],
)
def test_bad_recipe(text, message, tmp_path, monkeypatch, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(text)
    code, _, err = run_cli(["data", "ingest", "--recipe", str(recipe)], monkeypatch, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert str(recipe) in err and message in err


def test_manifest_with_image_in_two_splits_fails_validation(tmp_path, monkeypatch, capsys):
    tree = make_image_tree(tmp_path / "tree", {"a": 10, "b": 10})
    out = tmp_path / "d"
    recipe = write_recipe(tmp_path / "r.yaml", tree)
    assert run_cli(["data", "ingest", "--recipe", str(recipe), "--out", str(out)], monkeypatch, capsys)[0] == 0
    import pandas as pd

    frame = pd.read_parquet(out / "manifest.parquet")
    train = frame.index[frame["split"] == "train"][0]
    test = frame.index[frame["split"] == "test"][0]
    frame.loc[test, "sha256"] = frame.loc[train, "sha256"]
    frame.to_parquet(out / "manifest.parquet", index=False)
    code, _, err = run_cli(["data", "validate", str(out)], monkeypatch, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "expect_column_values_to_be_unique(sha256)" in err
    assert f"{frame.loc[train, 'id']} (train)" in err and f"{frame.loc[test, 'id']} (test)" in err


def test_failed_stage_marks_its_mlflow_run_failed(tmp_path, monkeypatch, capsys):

    tree = make_image_tree(tmp_path / "tree", {"a": 2})
    (tree / "a" / "bad.png").write_bytes(b"")
    recipe = write_recipe(tmp_path / "r.yaml", tree)
    assert run_cli(["data", "ingest", "--recipe", str(recipe), "--out", str(tmp_path / "o")], monkeypatch, capsys)[0] == 1
    runs = stage_runs()
    assert list(runs["status"]) == ["FAILED"] and list(runs["tags.stage"]) == ["ingest"]


def test_console_script_prints_one_line(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("name: x\ndomain: medicine\ndata: {source: pbc}\n")
    result = subprocess.run([SYNTHDATA, "recipe", str(recipe)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {recipe}: 'domain' must be one of ['medical', 'satellite', 'driving', 'generic'], got 'medicine'"
    ]
