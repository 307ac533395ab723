"""The manifest suite and the file check (synthdata/data/expectations.py), on planted defects."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_image_tree, png_bytes

from synthdata.config.recipe import SplitSettings
from synthdata.data.card import read_card
from synthdata.data.expectations import check_files, manifest_expectations, run_suite, validate_dataset
from synthdata.data.ingest import ingest
from synthdata.data.manifest import COLUMNS, read_manifest
from synthdata.data.sources import get_source
from synthdata.errors import DataError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """One tiny ingested dataset (3 classes, train/val/test), shared read-only by the module."""
    root = tmp_path_factory.mktemp("expectations")
    tree = make_image_tree(root / "tree", {"a": 6, "b": 5, "c": 4})
    out = root / "t"
    ingest(get_source("imagefolder", path=str(tree), dataset="t"), out, split=SplitSettings())
    return out


@pytest.fixture(scope="module")
def clean(dataset):
    return read_manifest(dataset), read_card(dataset)


@pytest.fixture
def dataset_copy(dataset, tmp_path) -> Path:
    """A private copy for tests that damage files on disk."""
    return Path(shutil.copytree(dataset, tmp_path / "t"))


def _row(frame: pd.DataFrame, split: str) -> int:
    return int(frame.index[frame["split"] == split][0])


def test_fixture_has_every_split(clean):
    frame, card = clean
    assert set(frame["split"]) == {"train", "val", "test"}
    assert card.classes == ["a", "b", "c"]
    assert (card.width, card.height, card.channels) == (8, 8, 3)
    assert len(frame) == 15


def test_clean_manifest_passes(dataset, clean):
    frame, card = clean
    report = run_suite(frame, card)
    assert report.success, [f.describe() for f in report.failures]
    assert report.failures == []
    assert report.evaluated == len(manifest_expectations(card))
    assert validate_dataset(dataset, frame, card).success
    assert check_files(frame, dataset) == []


# --- planted defects, one per expectation -----------------------------------------------------
# Each planter damages a copy of the frame and returns the id of the row it planted (None for
# table-level defects) and the expectation type and column that must fail.


def _dup_sha_across_splits(frame):
    train, test = _row(frame, "train"), _row(frame, "test")
    frame.loc[test, "sha256"] = frame.loc[train, "sha256"]
    return frame.loc[test, "id"], ("expect_column_values_to_be_unique", "sha256")


def _dup_id(frame):
    train, test = _row(frame, "train"), _row(frame, "test")
    frame.loc[test, "id"] = frame.loc[train, "id"]
    return frame.loc[test, "id"], ("expect_column_values_to_be_unique", "id")


def _dup_relpath(frame):
    train, val = _row(frame, "train"), _row(frame, "val")
    frame.loc[val, "relpath"] = frame.loc[train, "relpath"]
    return frame.loc[val, "id"], ("expect_column_values_to_be_unique", "relpath")


def _undeclared_label_name(frame):
    row = _row(frame, "train")
    frame.loc[row, "label_name"] = "zebra"
    return frame.loc[row, "id"], ("expect_column_values_to_be_in_set", "label_name")


def _label_out_of_range(frame):
    row = _row(frame, "val")
    frame.loc[row, "label"] = 7
    return frame.loc[row, "id"], ("expect_column_values_to_be_in_set", "label")


def _label_pair_mismatch(frame):
    row = _row(frame, "train")
    frame.loc[row, "label"] = (frame.loc[row, "label"] + 1) % 3  # still a declared label
    return frame.loc[row, "id"], ("expect_column_pair_values_to_be_in_set", "label+label_name")


def _width(frame):
    row = _row(frame, "test")
    frame.loc[row, "width"] = 16
    return frame.loc[row, "id"], ("expect_column_values_to_be_in_set", "width")


def _height(frame):
    row = _row(frame, "train")
    frame.loc[row, "height"] = 9
    return frame.loc[row, "id"], ("expect_column_values_to_be_in_set", "height")


def _channels(frame):
    row = _row(frame, "train")
    frame.loc[row, "channels"] = 1
    return frame.loc[row, "id"], ("expect_column_values_to_be_in_set", "channels")


def _holdout_split(frame):
    row = _row(frame, "train")
    frame.loc[row, "split"] = "holdout"
    return frame.loc[row, "id"], ("expect_column_values_to_be_in_set", "split")


def _null_source(frame):
    row = _row(frame, "val")
    frame.loc[row, "source"] = pd.NA
    return frame.loc[row, "id"], ("expect_column_values_to_not_be_null", "source")


def _bad_sha(frame):
    row = _row(frame, "train")
    frame.loc[row, "sha256"] = frame.loc[row, "sha256"].upper()
    return frame.loc[row, "id"], ("expect_column_values_to_match_regex", "sha256")


def _extra_column(frame):
    frame["extra"] = "x"
    return None, ("expect_table_columns_to_match_set", "table")


def _missing_column(frame):
    del frame["licence"]
    return None, ("expect_table_columns_to_match_set", "table")


DEFECTS = {
    "duplicate-sha256-across-splits": _dup_sha_across_splits,
    "duplicate-id": _dup_id,
    "duplicate-relpath": _dup_relpath,
    "undeclared-label-name": _undeclared_label_name,
    "label-out-of-range": _label_out_of_range,
    "label-pair-mismatch": _label_pair_mismatch,
    "width": _width,
    "height": _height,
    "channels": _channels,
    "holdout-split": _holdout_split,
    "null-source": _null_source,
    "uppercase-sha256": _bad_sha,
    "extra-column": _extra_column,
    "missing-column": _missing_column,
}


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_planted_defect_fails_the_suite(clean, defect):
    frame, card = clean
    damaged = frame.copy()
    row_id, (expectation, column) = DEFECTS[defect](damaged)
    report = run_suite(damaged, card)
    assert not report.success
    matching = [f for f in report.failures if f.expectation == expectation and f.column == column]
    assert matching, [f.describe() for f in report.failures]
    failure = matching[0]
    if row_id is None:
        assert failure.rows == []
        assert "observed" in failure.detail
    else:
        assert any(r.startswith(f"{row_id} (") for r in failure.rows), failure.rows
    # The shared frame is untouched (the planters work on a copy).
    assert list(frame.columns) == list(COLUMNS)


def test_duplicate_sha_reports_both_rows_with_their_splits(clean):
    frame, card = clean
    damaged = frame.copy()
    train, test = _row(damaged, "train"), _row(damaged, "test")
    damaged.loc[test, "sha256"] = damaged.loc[train, "sha256"]
    report = run_suite(damaged, card)
    (failure,) = [f for f in report.failures if f.column == "sha256"]
    assert sorted(failure.rows) == sorted([f"{damaged.loc[train, 'id']} (train)", f"{damaged.loc[test, 'id']} (test)"])


def test_label_name_outside_classes_names_the_value_set(clean):
    frame, card = clean
    damaged = frame.copy()
    _undeclared_label_name(damaged)
    types = {f.expectation for f in run_suite(damaged, card).failures}
    # The pair check fails too, but the set check on label_name is what says "undeclared".
    assert "expect_column_values_to_be_in_set" in types


# --- validate_dataset: one error line ---------------------------------------------------------


def test_validate_dataset_raises_one_line_naming_expectation_and_row(dataset, clean):
    frame, card = clean
    damaged = frame.copy()
    row_id, _ = _holdout_split(damaged)
    with pytest.raises(DataError) as info:
        validate_dataset(dataset, damaged, card)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(dataset / "manifest.parquet"))
    assert "expect_column_values_to_be_in_set(split)" in message
    assert row_id in message


def test_file_check_catches_tampered_file(dataset_copy, clean):
    frame, card = clean
    row = _row(frame, "train")
    row_id, relpath = frame.loc[row, "id"], frame.loc[row, "relpath"]
    (dataset_copy / relpath).write_bytes(png_bytes(12345))
    assert check_files(frame, dataset_copy) == [f"{row_id} ({relpath}: sha256 differs)"]
    with pytest.raises(DataError) as info:
        validate_dataset(dataset_copy, frame, card)
    message = str(info.value)
    assert "\n" not in message
    assert "file check failed" in message
    assert row_id in message
    assert "sha256 differs" in message


def test_file_check_catches_deleted_file(dataset_copy, clean):
    frame, card = clean
    row = _row(frame, "test")
    row_id, relpath = frame.loc[row, "id"], frame.loc[row, "relpath"]
    (dataset_copy / relpath).unlink()
    assert check_files(frame, dataset_copy) == [f"{row_id} ({relpath}: missing)"]
    with pytest.raises(DataError) as info:
        validate_dataset(dataset_copy, frame, card)
    assert row_id in str(info.value)
    assert "missing" in str(info.value)


def test_file_check_refuses_relpath_leaving_the_folder(dataset_copy, clean):
    frame, card = clean
    damaged = frame.copy()
    row = _row(damaged, "val")
    row_id, relpath = damaged.loc[row, "id"], damaged.loc[row, "relpath"]
    # The file really exists outside, with the right bytes: only its place is wrong.
    shutil.copy(dataset_copy / relpath, dataset_copy.parent / "outside.png")
    damaged.loc[row, "relpath"] = "../outside.png"
    assert check_files(damaged, dataset_copy) == [f"{row_id} (../outside.png: leaves the dataset folder)"]
    with pytest.raises(DataError) as info:
        validate_dataset(dataset_copy, damaged, card)
    assert row_id in str(info.value)
    assert "leaves the dataset folder" in str(info.value)


def test_file_check_refuses_absolute_relpath(dataset_copy, clean):
    frame, _ = clean
    damaged = frame.copy()
    row = _row(damaged, "train")
    outside = dataset_copy.parent / "abs.png"
    shutil.copy(dataset_copy / damaged.loc[row, "relpath"], outside)
    damaged.loc[row, "relpath"] = str(outside)
    bad = check_files(damaged, dataset_copy)
    assert len(bad) == 1 and damaged.loc[row, "id"] in bad[0] and "leaves the dataset folder" in bad[0]


def test_file_check_reports_every_bad_row(dataset_copy, clean):
    frame, _ = clean
    for relpath in frame["relpath"][:7]:
        (dataset_copy / relpath).unlink()
    bad = check_files(frame, dataset_copy)
    assert [b.split(" ")[0] for b in bad] == list(frame["id"][:7])


def test_duplicate_id_reports_each_row_with_its_own_split(clean):
    frame, card = clean
    damaged = frame.copy()
    train, test = _row(damaged, "train"), _row(damaged, "test")
    damaged.loc[test, "id"] = damaged.loc[train, "id"]
    report = run_suite(damaged, card)
    (failure,) = [f for f in report.failures if f.column == "id"]
    row_id = damaged.loc[train, "id"]
    # One copy is in train and the other in test; the report must not call both "train".
    assert sorted(failure.rows) == sorted([f"{row_id} (train)", f"{row_id} (test)"])
