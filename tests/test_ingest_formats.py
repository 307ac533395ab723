"""Ingest of every format, on tiny generated fixtures laid out like each real source."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image_tree, png_bytes, zip_tree
from PIL import Image

from synthdata.config.recipe import SplitSettings
from synthdata.data.card import read_card
from synthdata.data.ingest import ingest
from synthdata.data.manifest import COLUMNS, read_manifest
from synthdata.data.sources import BUILTIN, get_source
from synthdata.data.sources.eurosat import CLASSES as EUROSAT_CLASSES
from synthdata.data.sources.gtsrb import CLASSES as GTSRB_CLASSES
from synthdata.errors import DataError


def _jpeg(seed: int, size: int = 8) -> bytes:
    array = np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _ingest_builtin(name: str, files: dict[str, Path], out: Path, monkeypatch, **split) -> tuple:
    source = BUILTIN[name]
    monkeypatch.setattr(type(source), "fetch", lambda self: files)
    ingest(source, out, split=SplitSettings(**split))
    return read_manifest(out), read_card(out)


def _check_consistent(out: Path, frame) -> None:
    """Files exist, hashes and sizes match the manifest, ids are unique."""
    assert list(frame.columns) == list(COLUMNS)
    assert frame["id"].is_unique and frame["sha256"].is_unique
    for row in frame.itertuples():
        assert (out / row.relpath).is_file()
        with Image.open(out / row.relpath) as image:
            assert image.size == (row.width, row.height)
    assert not list(out.parent.glob(".staging-*")), "staging folder left behind"


def test_user_imagefolder_without_splits_gets_stratified_split(image_tree, tmp_path):
    out = tmp_path / "mine"
    ingest(get_source("imagefolder", path=str(image_tree), dataset="mine"), out, split=SplitSettings(0.1, 0.2, seed=3))
    frame, card = read_manifest(out), read_card(out)
    _check_consistent(out, frame)
    assert card.classes == ["a", "b", "c"]
    assert len(frame) == 62
    test = frame[frame["split"] == "test"]["label_name"].value_counts().to_dict()
    assert test == {"a": 6, "b": 4, "c": 2}  # 20% of 30/20/12, per class
    val = frame[frame["split"] == "val"]["label_name"].value_counts().to_dict()
    assert val == {"a": 3, "b": 2, "c": 1}


def test_user_imagefolder_zip_with_split_folders(tmp_path):
    tree = make_image_tree(tmp_path / "tree", {"cat": 4, "dog": 3}, splits=("train", "valid", "test"))
    archive = zip_tree(tree, tmp_path / "pets.zip", prefix="pets/")
    out = tmp_path / "pets"
    ingest(get_source("imagefolder", path=str(archive), dataset="pets"), out, split=SplitSettings())
    frame, card = read_manifest(out), read_card(out)
    _check_consistent(out, frame)
    assert card.split_protocol == "official train/val/test"
    assert frame.groupby("split").size().to_dict() == {"test": 7, "train": 7, "val": 7}
    assert card.files[0]["path"] == str(archive) and len(card.files[0]["sha256"]) == 64
    assert frame["origin"].str.startswith("pets.zip:pets/").all()


def test_user_npz_medmnist_style(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 12), ("val", 4), ("test", 6)):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, 8, 8), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(n, 1).astype(np.uint8)
    path = tmp_path / "scan.npz"
    np.savez(path, **arrays)
    out = tmp_path / "scan"
    ingest(
        get_source("npz", path=str(path), dataset="scan", classes=["healthy", "lesion"]), out, split=SplitSettings()
    )
    frame, card = read_manifest(out), read_card(out)
    _check_consistent(out, frame)
    assert card.classes == ["healthy", "lesion"] and card.channels == 1 and (card.width, card.height) == (8, 8)
    assert frame.groupby("split").size().to_dict() == {"test": 6, "train": 12, "val": 4}
    first = frame[frame["origin"] == "scan.npz:train[0]"].iloc[0]
    stored = np.asarray(Image.open(out / first["relpath"]))
    assert np.array_equal(stored, arrays["train_images"][0]) and first["label_name"] == "healthy"


def test_npz_label_outside_declared_set(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, train_images=np.zeros((2, 8, 8), np.uint8), train_labels=np.array([[0], [5]], np.uint8))
    with pytest.raises(DataError, match=r"bad.npz:train\[1\]: label 5 is outside the declared set"):
        ingest(
            get_source("npz", path=str(path), dataset="bad", classes=["x", "y"]), tmp_path / "o", split=SplitSettings()
        )
    assert not (tmp_path / "o").exists()


def test_npz_with_nan_is_refused(tmp_path):
    path = tmp_path / "nan.npz"
    images = np.zeros((2, 8, 8), np.float32)
    images[1, 0, 0] = np.nan
    np.savez(path, train_images=images, train_labels=np.array([[0], [1]], np.uint8))
    with pytest.raises(DataError, match="NaN or Inf"):
        ingest(get_source("npz", path=str(path), dataset="nan"), tmp_path / "o", split=SplitSettings())


def test_npz_object_arrays_need_pickle_and_are_refused(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, train_images=np.array([object()], dtype=object), train_labels=np.array([[0]]))
    with pytest.raises(DataError, match="pickle"):
        ingest(get_source("npz", path=str(path), dataset="p"), tmp_path / "o", split=SplitSettings())


@pytest.mark.parametrize("name", ["pneumoniamnist", "breastmnist"])
def test_medmnist_layout(name, tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    arrays = {}
    for split, n in (("train", 10), ("val", 4), ("test", 4)):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(n, 1).astype(np.uint8)
    path = tmp_path / f"{name}.npz"
    np.savez(path, **arrays)
    key = BUILTIN[name].info.files[0].path
    frame, card = _ingest_builtin(name, {key: path}, tmp_path / name, monkeypatch)
    _check_consistent(tmp_path / name, frame)
    assert card.split_protocol == "official train/val/test"
    assert (card.width, card.height, card.channels) == (28, 28, 1)
    assert set(frame["label_name"]) == set(BUILTIN[name].info.classes)
    assert (frame["licence"] == "CC BY 4.0").all()


def test_pbc_layout_dedupes_and_splits(tmp_path, monkeypatch):
    tree = make_image_tree(tmp_path / "pbc-blood-32", {c: 10 for c in BUILTIN["pbc"].info.classes})
    duplicate = tree / "basophil" / "000.png"
    (tree / "basophil" / "copy.png").write_bytes(duplicate.read_bytes())
    (tree / "platelet" / "conflict.png").write_bytes((tree / "eosinophil" / "000.png").read_bytes())
    archive = zip_tree(tree, tmp_path / "pbc-blood-32.zip", prefix="pbc-blood-32/")
    frame, card = _ingest_builtin("pbc", {"pbc/pbc-blood-32.zip": archive}, tmp_path / "pbc", monkeypatch)
    _check_consistent(tmp_path / "pbc", frame)
    assert card.removed == {"exact_duplicates": 1, "conflicting_label_duplicates": 2}
    assert len(frame) == 80 - 1
    assert card.counts["test"]["platelet"] == 2 and card.counts["val"]["platelet"] == 1


def test_eurosat_layout_uses_csv_split_and_carves_val(tmp_path, monkeypatch):
    archive = tmp_path / "EuroSAT_RGB.zip"
    rows = {"train": [], "test": []}
    with zipfile.ZipFile(archive, "w") as z:
        for label, name in enumerate(EUROSAT_CLASSES):
            for i in range(12):
                member = f"{name}/{name}_{i}.jpg"
                z.writestr(f"EuroSAT_RGB/{member}", _jpeg(label * 100 + i))
                rows["test" if i >= 10 else "train"].append(f"{i},{member},{label},{name}")
    files = {"eurosat/EuroSAT_RGB.zip": archive}
    for split, lines in rows.items():
        files[f"eurosat/{split}.csv"] = tmp_path / f"{split}.csv"
        files[f"eurosat/{split}.csv"].write_text(",Filename,Label,ClassName\n" + "\n".join(lines) + "\n")
    files["eurosat/label_map.json"] = tmp_path / "label_map.json"
    files["eurosat/label_map.json"].write_text(json.dumps({n: i for i, n in enumerate(EUROSAT_CLASSES)}))
    frame, card = _ingest_builtin("eurosat", files, tmp_path / "eurosat", monkeypatch, val_fraction=0.2)
    _check_consistent(tmp_path / "eurosat", frame)
    assert frame.groupby("split").size().to_dict() == {"test": 20, "train": 80, "val": 20}
    assert "val carved from train" in card.split_protocol


def test_eurosat_csv_naming_a_missing_file(tmp_path, monkeypatch):
    archive = tmp_path / "EuroSAT_RGB.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("EuroSAT_RGB/Forest/Forest_1.jpg", _jpeg(0))
    files = {"eurosat/EuroSAT_RGB.zip": archive}
    for split in ("train", "test"):
        files[f"eurosat/{split}.csv"] = tmp_path / f"{split}.csv"
        files[f"eurosat/{split}.csv"].write_text(",Filename,Label,ClassName\n0,Forest/Forest_2.jpg,1,Forest\n")
    files["eurosat/label_map.json"] = tmp_path / "label_map.json"
    files["eurosat/label_map.json"].write_text(json.dumps({n: i for i, n in enumerate(EUROSAT_CLASSES)}))
    with pytest.raises(DataError, match=r"train.csv:2: 'EuroSAT_RGB/Forest/Forest_2.jpg' is not in"):
        _ingest_builtin("eurosat", files, tmp_path / "eurosat", monkeypatch)


def test_gtsrb_layout_splits_validation_by_track(tmp_path, monkeypatch):
    root = tmp_path / "gtsrb-32"
    seed = 0
    for class_id in range(len(GTSRB_CLASSES)):
        for track in range(4):
            folder = root / "train" / f"{class_id:05d}"
            folder.mkdir(parents=True, exist_ok=True)
            for frame_no in range(3):
                seed += 1
                (folder / f"{track:05d}_{frame_no:05d}.png").write_bytes(png_bytes(seed))
        test_folder = root / "test" / f"{class_id:05d}"
        test_folder.mkdir(parents=True)
        seed += 1
        (test_folder / f"{seed:05d}.png").write_bytes(png_bytes(seed))
    archive = zip_tree(root, tmp_path / "gtsrb-32.zip", prefix="gtsrb-32/")
    frame, card = _ingest_builtin(
        "gtsrb", {"gtsrb/gtsrb-32.zip": archive}, tmp_path / "gtsrb", monkeypatch, val_fraction=0.25
    )
    _check_consistent(tmp_path / "gtsrb", frame)
    train_val = frame[frame["split"] != "test"]
    assert (train_val.groupby("group")["split"].nunique() == 1).all(), "a track was split across train and val"
    assert (frame.loc[frame["split"] == "val"].groupby("label_name").size() == 3).all()  # one whole track per class
    assert (frame.loc[frame["split"] == "test", "group"] == "").all()
    assert card.classes == list(GTSRB_CLASSES)


def test_gtsrb_unknown_class_folder(tmp_path, monkeypatch):
    root = tmp_path / "gtsrb-32" / "train" / "00099"
    root.mkdir(parents=True)
    (root / "00000_00000.png").write_bytes(png_bytes(1))
    archive = zip_tree(tmp_path / "gtsrb-32", tmp_path / "g.zip", prefix="gtsrb-32/")
    with pytest.raises(DataError, match="00099"):
        _ingest_builtin("gtsrb", {"gtsrb/gtsrb-32.zip": archive}, tmp_path / "gtsrb", monkeypatch)


def test_cifar10_layout(tmp_path, monkeypatch):
    archive = tmp_path / "cifar10-jpeg.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for label, name in enumerate(BUILTIN["cifar10"].info.classes):
            for split, n in (("train", 5), ("test", 2)):
                for i in range(n):
                    z.writestr(f"{split}/{name}/{i:04d}.jpg", _jpeg(1000 * label + 10 * (split == "test") + i))
    frame, card = _ingest_builtin(
        "cifar10", {"cifar10/cifar10-jpeg.zip": archive}, tmp_path / "c", monkeypatch, val_fraction=0.2
    )
    _check_consistent(tmp_path / "c", frame)
    assert frame.groupby("split").size().to_dict() == {"test": 20, "train": 40, "val": 10}
    assert (card.width, card.height, card.channels) == (8, 8, 3)


def test_resize_on_ingest_and_size_mismatch(tmp_path):
    tree = make_image_tree(tmp_path / "t", {"a": 3, "b": 3})
    (tree / "a" / "big.png").write_bytes(png_bytes(99, size=16))
    with pytest.raises(DataError, match=r"big.png: size 16x16x3 differs .*set data.image_size"):
        ingest(get_source("imagefolder", path=str(tree), dataset="t"), tmp_path / "o", split=SplitSettings())
    ingest(
        get_source("imagefolder", path=str(tree), dataset="t"), tmp_path / "o", split=SplitSettings(), image_size=12
    )
    assert set(read_manifest(tmp_path / "o")["width"]) == {12}


def test_declared_class_without_images(tmp_path):
    tree = make_image_tree(tmp_path / "t", {"a": 3, "b": 3})
    source = get_source("imagefolder", path=str(tree), dataset="t", classes=["a", "b", "c"])
    with pytest.raises(DataError, match=r"declared classes with no images: \['c'\]"):
        ingest(source, tmp_path / "o", split=SplitSettings())


def test_same_input_same_manifest_and_rerun_replaces_atomically(image_tree, tmp_path):
    source = get_source("imagefolder", path=str(image_tree), dataset="d")
    first = ingest(source, tmp_path / "d", split=SplitSettings())
    again = ingest(source, tmp_path / "d", split=SplitSettings())
    assert first.manifest_sha256 == again.manifest_sha256
    other = ingest(source, tmp_path / "d", split=SplitSettings(seed=7))
    assert other.manifest_sha256 != first.manifest_sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "tree"]
