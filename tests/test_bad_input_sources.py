"""The bad-input corpus, sources: archives zipfile cannot read, npz files without images or
splits, source names that are not built-in, and messages that must name the right culprit.

Every refusal goes through the command line: exit 1, one ``error:`` line naming the file (or
argument) and the problem, nothing under the output's name. The few inputs that are accepted
instead (backslash member names, EXIF orientation, many undeclared npz classes) are checked
for what they must then produce.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image_tree, png_bytes
from PIL import Image
from test_bad_input import run_cli, write_recipe

from synthdata.data.card import read_card
from synthdata.data.manifest import read_manifest


def _refused(argv: list[str], out: Path, monkeypatch, capsys) -> str:
    """The one error line of a refused command; checks exit 1 and that nothing was written."""
    code, _, err = run_cli([*argv, "--out", str(out)], monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert not out.exists() and not (out.parent / f".staging-{out.name}").exists()
    return lines[0]


def _ingest(recipe: Path, out: Path, monkeypatch, capsys) -> None:
    code, _, err = run_cli(["data", "ingest", "--recipe", str(recipe), "--out", str(out)], monkeypatch, capsys)
    assert code == 0, err


# --- archives ---------------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _tree_members(counts: dict[str, int], sep: str = "/") -> dict[str, bytes]:
    return {
        f"{c}{sep}{i:03d}.png": png_bytes(100 * k + i) for k, (c, n) in enumerate(counts.items()) for i in range(n)
    }


def _patch_member(archive: Path, name: str, *, flags: int = 0, method: int | None = None) -> Path:
    """Set general-purpose flag bits and the compression method of one member, in its local
    header and its central directory entry (what a real encrypting or Deflate64 tool writes)."""
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as z:
        local, central = z.getinfo(name).header_offset, z.start_dir
    at = central
    while data[at : at + 4] == b"PK\x01\x02":
        length, extra, comment = struct.unpack_from("<HHH", data, at + 28)
        if data[at + 46 : at + 46 + length].decode() == name:
            break
        at += 46 + length + extra + comment
    for offset in (local + 6, at + 8):  # flag bits, then the compression method right after them
        struct.pack_into("<H", data, offset, struct.unpack_from("<H", data, offset)[0] | flags)
        if method is not None:
            struct.pack_into("<H", data, offset + 2, method)
    archive.write_bytes(bytes(data))
    return archive


def _add_member(archive: Path, name: str, data: bytes) -> Path:
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr(name, data)
    return archive


def test_zip_with_backslash_member_names_is_read_as_folders(tmp_path, monkeypatch, capsys):
    # Old Windows tools write "a\\001.png"; the backslash is the separator, as for '..' checks.
    archive = _zip(tmp_path / "win.zip", _tree_members({"a": 3, "b": 3}, sep="\\"))
    _ingest(write_recipe(tmp_path / "r.yaml", archive), tmp_path / "o", monkeypatch, capsys)
    assert read_card(tmp_path / "o").classes == ["a", "b"]
    assert len(read_manifest(tmp_path / "o")) == 6


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda a: _patch_member(a, "b/002.png", flags=0x1), "member 'b/002.png' is encrypted"),
        (lambda a: _patch_member(a, "b/002.png", method=9), "member 'b/002.png' is compressed with Deflate64"),
        (lambda a: _add_member(a, "a\\000.png", png_bytes(7)), "'a/000.png' and 'a\\000.png' name the same file"),
    ],
    ids=["password", "deflate64", "same-name-twice"],
)
def test_zip_member_that_cannot_be_read(damage, reason, tmp_path, monkeypatch, capsys):
    archive = _zip(tmp_path / "data.zip", _tree_members({"a": 3, "b": 3}))
    damage(archive)
    line = _refused(
        ["data", "ingest", "--recipe", str(write_recipe(tmp_path / "r.yaml", archive))],
        tmp_path / "o",
        monkeypatch,
        capsys,
    )
    assert "data.zip" in line and reason in line


# --- npz --------------------------------------------------------------------------------------


def _npz_recipe(tmp_path: Path, classes: str = "", **arrays: np.ndarray) -> Path:
    path = tmp_path / "scan.npz"
    np.savez(path, **arrays)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: scan\ndomain: medical\ndata:\n  source: npz\n  path: {path}\n{classes}")
    return recipe


def _images(n: int, seed: int = 0, size: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size), dtype=np.uint8)


NO_IMAGES = np.zeros((0, 8, 8), np.uint8)
NO_LABELS = np.zeros((0,), np.uint8)

BAD_NPZ = {
    "no-images": (
        dict(train_images=NO_IMAGES, train_labels=NO_LABELS, test_images=NO_IMAGES, test_labels=NO_LABELS),
        "holds no images",
    ),
    "0-d-images": (
        dict(train_images=np.array(3, np.uint8), train_labels=np.zeros(1, np.uint8)),
        "'train_images' has shape ()",
    ),
    "0-d-labels": (
        dict(train_images=_images(2), train_labels=np.array(0, np.uint8)),
        "'train_labels' must be integer",
    ),
    "val-only": (
        dict(val_images=_images(6), val_labels=np.arange(6) % 2),
        "has no train split; train and test are required",
    ),
    "train-only": (
        dict(train_images=_images(6), train_labels=np.arange(6) % 2),
        "has no test split; train and test are required",
    ),
    "label-gap": (
        dict(
            train_images=_images(6),
            train_labels=np.array([0, 2] * 3),
            test_images=_images(2, 1),
            test_labels=np.array([0, 2]),
        ),
        "no images with label 1",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_bad_npz_source(case, tmp_path, monkeypatch, capsys):
    arrays, reason = BAD_NPZ[case]
    line = _refused(
        ["data", "ingest", "--recipe", str(_npz_recipe(tmp_path, **arrays))], tmp_path / "o", monkeypatch, capsys
    )
    assert "scan.npz" in line and reason in line


def test_npz_with_many_undeclared_classes_keeps_the_files_labels(tmp_path, monkeypatch, capsys):
    labels = np.arange(24) % 12
    recipe = _npz_recipe(
        tmp_path, train_images=_images(24), train_labels=labels, test_images=_images(12, 1), test_labels=labels[:12]
    )
    _ingest(recipe, tmp_path / "o", monkeypatch, capsys)
    assert read_card(tmp_path / "o").classes == [f"class_{i}" for i in range(12)]
    frame = read_manifest(tmp_path / "o")
    assert (frame["label_name"] == "class_" + frame["label"].astype(str)).all()


# --- source names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil", "'../evil' is not a built-in source (pbc, pneumoniamnist"),
        ("PBC", "did you mean 'pbc'?"),
        (
            "imagefolder",
            "data.path is required, so give --recipe with data.source: imagefolder and data.path (built-in",
        ),
        ("npz", "data.path is required, so give --recipe with data.source: npz and data.path (built-in"),
    ],
    ids=["path", "upper-case", "imagefolder", "npz"],
)
def test_source_name_that_is_not_built_in(name, reason, tmp_path, monkeypatch, capsys):
    line = _refused(["data", "ingest", name], tmp_path / "o", monkeypatch, capsys)
    assert (
        f"'{name}'" in line and "pbc, pneumoniamnist, breastmnist, eurosat, gtsrb, cifar10" in line and reason in line
    )


# --- messages that name the right culprit -----------------------------------------------------


def test_grey_first_image_is_named_as_what_set_the_channel_count(tmp_path, monkeypatch, capsys):
    tree = make_image_tree(tmp_path / "tree", {"a": 3, "b": 3})
    (tree / "a" / "000.png").write_bytes(png_bytes(900, mode="L"))
    line = _refused(
        ["data", "ingest", "--recipe", str(write_recipe(tmp_path / "r.yaml", tree))],
        tmp_path / "o",
        monkeypatch,
        capsys,
    )
    assert "a/001.png: wrong channel count 3" in line and "the first image, a/000.png, has 1" in line
    assert "data.channels" in line and "declares" not in line


def test_class_left_with_only_duplicates_says_so(tmp_path, monkeypatch, capsys):
    tree = make_image_tree(tmp_path / "tree", {"a": 4, "b": 3})
    (tree / "c").mkdir()
    for i in range(2):
        (tree / "c" / f"{i:03d}.png").write_bytes((tree / "a" / f"{i:03d}.png").read_bytes())
    line = _refused(
        ["data", "ingest", "--recipe", str(write_recipe(tmp_path / "r.yaml", tree))],
        tmp_path / "o",
        monkeypatch,
        capsys,
    )
    assert "['c']" in line and "only copies of images of other classes" in line and "with no images" not in line


def test_not_an_image_names_the_file_not_a_buffer(tmp_path, monkeypatch, capsys):
    tree = make_image_tree(tmp_path / "tree", {"a": 3, "b": 3})
    (tree / "a" / "zz.png").write_bytes(b"plain text, not an image at all" * 4)
    line = _refused(
        ["data", "ingest", "--recipe", str(write_recipe(tmp_path / "r.yaml", tree))],
        tmp_path / "o",
        monkeypatch,
        capsys,
    )
    assert "a/zz.png: corrupt or truncated image (not a recognised image format)" in line
    assert "BytesIO" not in line and "0x" not in line


@pytest.mark.parametrize("where", ["folder", "zip"])
def test_control_characters_in_a_file_name_are_escaped(where, tmp_path, monkeypatch, capsys):
    members = {**_tree_members({"a": 3, "b": 3}), "a/zz\nbad\x1b.png": b"not an image"}
    if where == "zip":
        data = _zip(tmp_path / "data.zip", members)
    else:
        data = tmp_path / "tree"
        for name, payload in members.items():
            (data / name).parent.mkdir(parents=True, exist_ok=True)
            (data / name).write_bytes(payload)
    line = _refused(
        ["data", "ingest", "--recipe", str(write_recipe(tmp_path / "r.yaml", data))],
        tmp_path / "o",
        monkeypatch,
        capsys,
    )
    assert "a/zz\\nbad\\x1b.png: corrupt or truncated image" in line


def _exif_rotated_jpeg(seed: int) -> bytes:
    """Stored 16 wide x 8 high, left half bright; EXIF orientation 6 (turn 90 degrees clockwise
    to view), so it is seen 8 wide x 16 high with the bright half on top."""
    rng = np.random.default_rng(seed)
    pixels = np.concatenate([rng.integers(200, 256, (8, 8, 3)), rng.integers(0, 56, (8, 8, 3))], axis=1).astype(
        np.uint8
    )
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def test_exif_orientation_is_applied(tmp_path, monkeypatch, capsys):
    tree = tmp_path / "tree"
    for i, cls in enumerate("aabb"):
        (tree / cls).mkdir(parents=True, exist_ok=True)
        (tree / cls / f"{i}.jpg").write_bytes(_exif_rotated_jpeg(i))
    # upright, the image is 8 wide and 16 tall: letterboxed to 16x16, it fills columns 4..11
    extra = "  image_size: 16\n  resize: pad\n  pad_fill: 128\n"
    _ingest(write_recipe(tmp_path / "r.yaml", tree, extra), tmp_path / "o", monkeypatch, capsys)
    card = read_card(tmp_path / "o")
    assert (card.width, card.height) == (16, 16) and card.resize["native_sizes"] == {"8x16": 4}
    for relpath in read_manifest(tmp_path / "o")["relpath"]:
        pixels = np.asarray(Image.open(tmp_path / "o" / relpath))
        assert pixels[:8, 4:12].min() > 150 and pixels[8:, 4:12].max() < 100
        assert (pixels[:, :4] == 128).all() and (pixels[:, 12:] == 128).all()


@pytest.mark.parametrize(
    ("small", "reason"),
    [
        ("1x1", "a/zz.png: image is 1x1 pixels"),
        ("20x4", "a/zz.png: image is 20x4 pixels"),
        ("npz", "scan.npz:train[0]: image is 1x1 pixels"),
    ],
)
def test_images_under_8_pixels_on_a_side_are_refused(small, reason, tmp_path, monkeypatch, capsys):
    if small == "npz":
        recipe = _npz_recipe(tmp_path, train_images=np.zeros((2, 1, 1), np.uint8), train_labels=np.zeros(2, np.uint8))
    else:
        tree = make_image_tree(tmp_path / "tree", {"a": 3, "b": 3})
        width, height = map(int, small.split("x"))
        buffer = io.BytesIO()
        Image.new("RGB", (width, height), (9, 9, 9)).save(buffer, format="PNG")
        (tree / "a" / "zz.png").write_bytes(buffer.getvalue())
        # image_size would resize it; the floor is on what the source holds.
        recipe = write_recipe(tmp_path / "r.yaml", tree, "  image_size: 8\n")
    line = _refused(["data", "ingest", "--recipe", str(recipe)], tmp_path / "o", monkeypatch, capsys)
    assert reason in line and "smaller than 8 px" in line
