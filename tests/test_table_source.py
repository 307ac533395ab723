"""The ``csv`` source (synthdata/data/sources/table.py): images + a label table, group splits."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import png_bytes, zip_tree
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from synthdata import cli
from synthdata.data.card import read_card
from synthdata.data.ingest import Resize, ingest
from synthdata.data.manifest import read_manifest
from synthdata.data.sources import TableColumns, get_source
from synthdata.data.splits import SplitSettings, stratified_holdout
from synthdata.errors import DataError


def _lesion_set(root: Path, *, lesions: int = 24, per_lesion: int = 3, suffix: str = ".png") -> Path:
    """``root/images/ISIC_NNNN.png`` and ``root/labels.csv`` (image_id without suffix, dx,
    lesion_id), HAM10000's layout: several images per lesion, one diagnosis per lesion."""
    (root / "images").mkdir(parents=True)
    rows = []
    for lesion in range(lesions):
        dx = ("nv", "mel", "bkl")[lesion % 3]
        for k in range(per_lesion):
            image_id = f"ISIC_{lesion * per_lesion + k:04d}"
            (root / "images" / f"{image_id}{suffix}").write_bytes(png_bytes(1000 + lesion * per_lesion + k))
            rows.append({"image_id": image_id, "dx": dx, "lesion_id": f"HAM_{lesion:03d}"})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root


COLUMNS = TableColumns(image="image_id", label="dx", group="lesion_id")


def _ingest(root: Path, out: Path, labels: str = "labels.csv", columns: TableColumns = COLUMNS, **kwargs):
    source = get_source("csv", path=str(root / "images"), labels=str(root / labels), columns=columns, dataset="d")
    return ingest(source, out, split=kwargs.pop("split", SplitSettings(0.2, 0.2, seed=1)), **kwargs)


def test_csv_source_keeps_every_lesion_in_one_split(tmp_path):
    _ingest(_lesion_set(tmp_path / "src"), tmp_path / "d")
    frame, card = read_manifest(tmp_path / "d"), read_card(tmp_path / "d")
    assert len(frame) == 72 and sorted(card.classes) == ["bkl", "mel", "nv"]
    assert frame.groupby("group")["split"].nunique().max() == 1
    assert set(frame["split"]) == {"train", "val", "test"}
    assert "by group" in card.split_protocol
    assert frame.loc[frame["origin"] == "ISIC_0004.png", "label_name"].item() == "mel"


def test_csv_source_reads_parquet_and_the_users_own_split(tmp_path):
    root = _lesion_set(tmp_path / "src")
    table = pd.read_csv(root / "labels.csv", dtype=str)
    lesion = table["lesion_id"].str[4:].astype(int)
    table["fold"] = np.where(lesion % 4 == 0, "test", np.where(lesion % 4 == 1, "valid", "train"))
    table.to_parquet(root / "labels.parquet")
    columns = TableColumns(image="image_id", label="dx", split="fold", group="lesion_id")
    _ingest(root, tmp_path / "d", labels="labels.parquet", columns=columns)
    frame = read_manifest(tmp_path / "d")
    expected = dict(zip(table["image_id"] + ".png", table["fold"].replace({"valid": "val"}), strict=True))
    assert dict(zip(frame["origin"], frame["split"], strict=True)) == expected


def test_csv_source_from_a_zip_with_paths_in_the_table(tmp_path):
    root = _lesion_set(tmp_path / "src", lesions=6)
    archive = zip_tree(root / "images", tmp_path / "images.zip", prefix="images/")
    table = pd.read_csv(root / "labels.csv", dtype=str)
    table["image_id"] = "images/" + table["image_id"] + ".png"
    table.to_csv(root / "with-paths.csv", index=False)
    source = get_source("csv", path=str(archive), labels=str(root / "with-paths.csv"), columns=COLUMNS, dataset="z")
    ingest(source, tmp_path / "d", split=SplitSettings(0.2, 0.2))
    assert len(read_manifest(tmp_path / "d")) == 18
    assert [f["path"] for f in read_card(tmp_path / "d").files] == [str(archive), str(root / "with-paths.csv")]


def _rewrite(root: Path, change) -> None:
    table = pd.read_csv(root / "labels.csv", dtype=str, keep_default_na=False)
    change(table)
    table.to_csv(root / "labels.csv", index=False)


def _set(row: int, column: str, value: str):
    return lambda table: table.loc.__setitem__((row, column), value)


BAD_TABLES = {
    "row-without-image": (_set(0, "image_id", "ISIC_9999"), "labels.csv:2: image 'ISIC_9999' is not in"),
    "image-without-row": (
        lambda table: table.drop(index=5, inplace=True),
        "1 image(s) have no row in labels.csv (first: ISIC_0005.png)",
    ),
    "duplicated-id": (_set(3, "image_id", "ISIC_0002"), "labels.csv:5: image 'ISIC_0002' has a second row (first at"),
    "empty-label": (_set(4, "dx", ""), "labels.csv:6: image 'ISIC_0004' has an empty 'dx' cell"),
    "climbs-out": (_set(0, "image_id", "../secret"), "labels.csv:2: image '../secret' leaves the image folder"),
    "absolute": (_set(0, "image_id", "/etc/passwd"), "labels.csv:2: image '/etc/passwd' is an absolute path"),
    "no-label-column": (
        lambda table: table.rename(columns={"dx": "diagnosis"}, inplace=True),
        "no column 'dx' (the table has: image_id, diagnosis, lesion_id)",
    ),
}


@pytest.mark.parametrize("case", BAD_TABLES, ids=list(BAD_TABLES))
def test_bad_table_is_one_line_and_nothing_is_published(case, tmp_path):
    change, message = BAD_TABLES[case]
    root = _lesion_set(tmp_path / "src", lesions=6)
    _rewrite(root, change)
    with pytest.raises(DataError) as caught:
        _ingest(root, tmp_path / "d")
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "d").exists() and not list(tmp_path.glob(".staging-*"))


def test_unknown_label_and_bad_split_and_group_in_two_splits(tmp_path):
    root = _lesion_set(tmp_path / "src", lesions=6)
    source = get_source(
        "csv", path=str(root / "images"), labels=str(root / "labels.csv"), columns=COLUMNS, classes=["nv", "mel"]
    )
    with pytest.raises(DataError, match=r"labels.csv:8: label 'bkl' is outside the declared set \['nv', 'mel'\]"):
        ingest(source, tmp_path / "d", split=SplitSettings())
    table = pd.read_csv(root / "labels.csv", dtype=str)
    table["fold"] = ["train"] * len(table)
    table.loc[7, "fold"] = "holdout"
    table.to_csv(root / "bad-split.csv", index=False)
    split = TableColumns(image="image_id", label="dx", split="fold", group="lesion_id")
    with pytest.raises(DataError, match="bad-split.csv:9: split 'holdout' is not one of"):
        _ingest(root, tmp_path / "d", labels="bad-split.csv", columns=split)
    table.loc[7, "fold"] = "test"  # lesion HAM_002's third image: its other two are in train
    table.to_csv(root / "leak.csv", index=False)
    with pytest.raises(
        DataError, match="leak.csv:9: group 'HAM_002' is in split test here and in train at .*leak.csv:8"
    ):
        _ingest(root, tmp_path / "d", labels="leak.csv", columns=split)


def test_multi_label_table_is_refused_with_a_line_that_says_so(tmp_path):
    root = _lesion_set(tmp_path / "src", lesions=3)
    table = pd.read_csv(root / "labels.csv", dtype=str)
    findings = pd.DataFrame(
        {"image_id": table["image_id"], "Edema": ["1", "0", ""] * 3, "Effusion": ["0", "-1", "1"] * 3}
    )
    findings.to_csv(root / "chexpert.csv", index=False)
    with pytest.raises(DataError, match="2 columns of 0/1 findings .*multi-label tables are not supported"):
        _ingest(root, tmp_path / "d", labels="chexpert.csv", columns=TableColumns(image="image_id", label="dx"))


def _cli(argv: list[str], monkeypatch, capsys) -> tuple[int, list[str]]:
    monkeypatch.setattr(sys, "argv", ["synthdata", *argv])
    try:
        cli.main()
    except SystemExit as exc:
        return (exc.code if isinstance(exc.code, int) else 1), capsys.readouterr().err.strip().splitlines()
    return 0, capsys.readouterr().err.strip().splitlines()


def test_a_csv_recipe_through_the_command_line(tmp_path, monkeypatch, capsys):
    root = _lesion_set(tmp_path / "src", lesions=6)
    recipe = tmp_path / "lesions.yaml"
    recipe.write_text(
        "name: lesions\ndomain: medical\ndata:\n  source: csv\n"
        f"  path: {root / 'images'}\n  labels: {root / 'labels.csv'}\n"
        "  image_column: image_id\n  label_column: dx\n  group_column: lesion_id\n  image_size: 8\n"
    )
    code, _ = _cli(["data", "ingest", "--recipe", str(recipe), "--out", str(tmp_path / "d")], monkeypatch, capsys)
    assert code == 0 and read_card(tmp_path / "d").resize["policy"] == "crop"
    recipe.write_text(recipe.read_text().replace("label_column: dx", "label_column: dxx"))
    code, err = _cli(["data", "ingest", "--recipe", str(recipe), "--out", str(tmp_path / "e")], monkeypatch, capsys)
    assert code == 1 and len(err) == 1 and err[0].startswith("error: ") and "no column 'dxx'" in err[0]
    assert not (tmp_path / "e").exists()


def _jpeg_like(width: int, height: int, seed: int) -> bytes:
    array = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_non_square_images_need_a_size_and_the_card_records_the_policy(tmp_path):
    root = _lesion_set(tmp_path / "src", lesions=6)
    for i, path in enumerate(sorted((root / "images").iterdir())):
        path.write_bytes(_jpeg_like(24, 18, i))  # 4:3, as dermoscopy's 600x450
    with pytest.raises(
        DataError, match=r"image is 24x18, not square; set data.image_size and data.resize: crop .* or pad"
    ):
        _ingest(root, tmp_path / "d")
    _ingest(root, tmp_path / "d", resize=Resize(12, "pad", 255))
    card = read_card(tmp_path / "d")
    assert (card.width, card.height) == (12, 12)
    assert card.resize == {
        "image_size": 12,
        "policy": "pad",
        "pad_fill": 255,
        "native_sizes": {"24x18": 18},
        "native_sizes_other": 0,
        "native_width": [24, 24],
        "native_height": [18, 18],
        "non_square": 18,
    }
    assert (
        "to 12 px by pad (bars of grey level 255); native sizes 24x18 (18)"
        in (tmp_path / "d" / "README.md").read_text()
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 12), st.sampled_from("abc")), min_size=1, max_size=80),
    st.floats(0.05, 0.6),
    st.integers(0, 2**16),
)
def test_holdout_never_separates_a_group(items, fraction, seed):
    """Groups may hold several classes (a patient with two diagnoses): still held out whole."""
    groups, labels = [f"g{g}" for g, _ in items], [label for _, label in items]
    held = stratified_holdout(labels, groups, fraction, seed)
    for group in set(groups):
        assert len({bool(h) for h, g in zip(held, groups, strict=True) if g == group}) == 1


def test_export_then_ingest_from_the_table_gives_the_same_images_and_group_splits(tmp_path, monkeypatch, capsys):
    """``synthdata data export`` writes what the csv source reads (the gtsrb-csv recipe's path)."""
    _ingest(_lesion_set(tmp_path / "src"), tmp_path / "d")
    code, _ = _cli(["data", "export", str(tmp_path / "d"), "--out", str(tmp_path / "x")], monkeypatch, capsys)
    assert code == 0 and sorted(p.name for p in (tmp_path / "x").iterdir()) == ["images", "labels.csv"]
    table = pd.read_csv(tmp_path / "x" / "labels.csv", dtype=str)
    assert list(table.columns) == ["image", "label", "split", "group"] and len(table) == 72
    columns = TableColumns(image="image", label="label", group="group")  # the user's split left out
    source = get_source("csv", path=str(tmp_path / "x"), labels=str(tmp_path / "x" / "labels.csv"), columns=columns)
    ingest(source, tmp_path / "again", split=SplitSettings(0.2, 0.2, seed=5))
    before, after = read_manifest(tmp_path / "d"), read_manifest(tmp_path / "again")
    assert dict(zip(before["sha256"], before["label_name"], strict=True)) == dict(
        zip(after["sha256"], after["label_name"], strict=True)
    )
    assert after.groupby("group")["split"].nunique().max() == 1
    code, err = _cli(["data", "export", str(tmp_path / "d"), "--out", str(tmp_path / "d" / "x")], monkeypatch, capsys)
    assert code == 1 and len(err) == 1 and err[0].startswith("error: ")  # an output inside its input
