"""The bad-input corpus: each case goes through the command line and must give one error line
naming the problem, a non-zero exit, and nothing half-written under the output's name.

Images (corrupt, truncated, zero-byte, 16-bit, wrong channels, decompression bomb), arrays (NaN,
Inf, pickled objects), archives (``..``, absolute paths, symlinks), labels (unknown, empty
classes), recipes (malformed, misspelled, wrong type, duplicate keys, Python tags), weights
(pickle, a malicious pickle, tampered, another base's adapter), manifests (a path leaving its
folder, a tampered file) and a disk that fills up while writing.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image_tree, png_bytes, stage_runs, zip_tree
from PIL import Image

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
    code, _, err = run_cli(
        ["data", "ingest", "--recipe", str(recipe), "--out", str(tmp_path / "o")], monkeypatch, capsys
    )
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
        (
            "name: x\ndomain: medical\ndata: {source: pbc}\nlongtail: {imbalanse: 10}\n",
            "unknown key 'longtail.imbalanse' (did you mean 'imbalance'?)",
        ),
        ("name: x\ndomain: medical\ndata: {source: pbc\n", "malformed YAML"),
        (
            "name: x\ndomain: medical\ndata: {source: pbc}\nlongtail: {imbalance: lots}\n",
            "'longtail.imbalance' must be a number",
        ),
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
    assert (
        run_cli(["data", "ingest", "--recipe", str(recipe), "--out", str(tmp_path / "o")], monkeypatch, capsys)[0] == 1
    )
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


def _bomb_png() -> bytes:
    """A valid PNG whose header claims 20,000 x 20,000 pixels (400 M) over a tiny body."""
    import struct
    import zlib

    data = bytearray(png_bytes(3))
    header = struct.pack(">II", 20000, 20000) + bytes(data[24:29])
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header) & 0xFFFFFFFF)
    return bytes(data)


def test_decompression_bomb(tmp_path, monkeypatch, capsys):
    tree = make_image_tree(tmp_path / "tree", {"a": 3, "b": 3})
    (tree / "a" / "zz-bomb.png").write_bytes(_bomb_png())
    out = tmp_path / "o"
    code, _, err = run_cli(
        ["data", "ingest", "--recipe", str(write_recipe(tmp_path / "r.yaml", tree)), "--out", str(out)],
        monkeypatch,
        capsys,
    )
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "a/zz-bomb.png" in err and "decompression bomb" in err and not out.exists()


def _npz_recipe(tmp_path: Path, images: np.ndarray, labels: np.ndarray | None = None) -> Path:
    path = tmp_path / "scan.npz"
    labels = np.zeros((len(images), 1), np.uint8) if labels is None else labels
    np.savez(path, train_images=images, train_labels=labels, test_images=images[:1], test_labels=labels[:1])
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: scan\ndomain: medical\ndata:\n  source: npz\n  path: {path}\n  classes: [x, y]\n")
    return recipe


def _float_images(value: float) -> np.ndarray:
    images = np.full((3, 8, 8), 0.5, np.float32)
    images[1, 2, 3] = value
    return images


@pytest.mark.parametrize(
    ("images", "labels", "reason"),
    [
        (_float_images(np.nan), None, "NaN or Inf"),
        (_float_images(np.inf), None, "NaN or Inf"),
        (np.array([object(), object()], dtype=object), None, "pickle"),
        (np.full((2, 8, 8), 40000, np.uint16), None, "16-bit data is not supported"),
        (np.zeros((2, 8, 8), np.uint8), np.array([[0], [7]], np.uint8), "label 7 is outside the declared set"),
    ],
    ids=["nan", "inf", "object-array", "16-bit-values", "unknown-label"],
)
def test_bad_npz(images, labels, reason, tmp_path, monkeypatch, capsys):
    out = tmp_path / "o"
    code, _, err = run_cli(
        ["data", "ingest", "--recipe", str(_npz_recipe(tmp_path, images, labels)), "--out", str(out)],
        monkeypatch,
        capsys,
    )
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "scan.npz" in err and reason in err and not out.exists()


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda tree: (tree / "c").mkdir(), "declared classes with no images: ['c']"),
        (lambda tree: [p.unlink() for p in tree.rglob("*.png")], "no image files found"),
        (lambda tree: __import__("shutil").rmtree(tree), "no such file or folder"),
    ],
    ids=["empty-class", "no-images", "missing-data"],
)
def test_empty_or_missing_data(build, reason, tmp_path, monkeypatch, capsys):
    tree = make_image_tree(tmp_path / "tree", {"a": 3, "b": 3})
    build(tree)
    recipe = write_recipe(tmp_path / "r.yaml", tree, "  classes: [a, b, c]\n")
    out = tmp_path / "o"
    code, _, err = run_cli(["data", "ingest", "--recipe", str(recipe), "--out", str(out)], monkeypatch, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert reason in err and not out.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\ndomain: medical\ndata: {source: pbc}\nname: y\n", "duplicate key 'name'"),
        (
            "name: !!python/object/apply:os.system ['touch pwned']\ndomain: medical\ndata: {source: pbc}\n",
            "python/object",
        ),
        ("name: x\ndomain: medical\ndata: {source: pbc}\nsampler: {steps: 4}\n", "unknown key 'sampler'"),
        ("", "empty"),
        ("name: x\ndomain: medical\n", "missing required key 'data'"),
        ("name: x\ndomain: medical\ndata: {source: pbc}\nutility: {arms: [real, real+magic]}\n", "real+magic"),
    ],
    ids=["duplicate-key", "python-tag", "unknown-section", "empty-file", "missing-key", "unknown-arm"],
)
def test_bad_recipe_more(text, message, tmp_path, monkeypatch, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(text)
    code, _, err = run_cli(["recipe", str(recipe)], monkeypatch, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert message in err and not (tmp_path / "pwned").exists()


def test_disk_full_while_writing(tmp_path, monkeypatch, capsys):
    import errno

    from synthdata.data import writer

    tree = make_image_tree(tmp_path / "tree", {"a": 4, "b": 4})
    written = []

    def fills_up(path, data):
        if len(written) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        written.append(path)
        return real(path, data)

    real = writer.write_bytes
    monkeypatch.setattr(writer, "write_bytes", fills_up)
    out = tmp_path / "o"
    code, _, err = run_cli(
        ["data", "ingest", "--recipe", str(write_recipe(tmp_path / "r.yaml", tree)), "--out", str(out)],
        monkeypatch,
        capsys,
    )
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "No space left on device" in err and not out.exists()
    assert not [p for p in tmp_path.rglob("*.part")]


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    from conftest import make_sampling_setup

    return make_sampling_setup(tmp_path_factory.mktemp("adapted"))


class _Malicious:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _pickle_adapter(folder: Path, marker: Path) -> None:
    import pickle

    (folder / "adapter_model.safetensors").unlink()
    (folder / "adapter_model.bin").write_bytes(pickle.dumps(_Malicious(marker)))


def _tamper(folder: Path, marker: Path) -> None:
    path = folder / "adapter_model.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _other_base(folder: Path, marker: Path) -> None:
    import json

    record = json.loads((folder / "adapter.json").read_text())
    record["base_sha256"] = "0" * 64
    (folder / "adapter.json").write_text(json.dumps(record))


def _garbage_weights(folder: Path, marker: Path) -> None:
    (folder / "adapter_model.safetensors").write_bytes(b"\x00" * 64)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (
            lambda folder, marker: (folder / "extra.pt").write_bytes(b"\x80\x04 pickle"),
            "refusing pickle weights (.pt)",
        ),
        (_pickle_adapter, "refusing pickle weights (.bin)"),
        (_tamper, "sha256 differs"),
        (_other_base, "adapter belongs to base sha256"),
        (_garbage_weights, "sha256 differs"),
    ],
    ids=["pickle-beside-weights", "malicious-pickle", "tampered-weights", "another-base", "garbage-weights"],
)
def test_bad_adapter(damage, reason, adapted, tmp_path, monkeypatch, capsys):
    import shutil

    adapter = shutil.copytree(adapted / "adapter", tmp_path / "adapter")
    marker = tmp_path / "unpickled"
    damage(adapter, marker)
    out = tmp_path / "synthetic"
    monkeypatch.setenv("SYNTHDATA_MLRUNS", str(tmp_path / "mlruns"))
    argv = [
        "sample",
        "--recipe",
        str(adapted / "tiny.yaml"),
        "--dataset",
        str(adapted / "d"),
        "--adapter",
        str(adapter),
        "--out",
        str(out),
    ]
    code, _, err = run_cli(argv, monkeypatch, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert reason in err and not out.exists()
    assert not marker.exists(), "a pickle was unpickled"


def test_manifest_path_leaving_its_folder(adapted, tmp_path, monkeypatch, capsys):
    import shutil

    import pandas as pd

    dataset = shutil.copytree(adapted / "d", tmp_path / "d")
    frame = pd.read_parquet(dataset / "manifest.parquet")
    frame.loc[0, "relpath"] = "../../../etc/passwd"
    frame.to_parquet(dataset / "manifest.parquet", index=False)
    code, _, err = run_cli(["data", "validate", str(dataset)], monkeypatch, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "../../../etc/passwd" in err and "leaves" in err
