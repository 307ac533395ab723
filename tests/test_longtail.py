"""The long-tail profile: exact counts, test split untouched, deterministic for a seed."""

from __future__ import annotations

import pytest
from conftest import make_image_tree
from hypothesis import given, settings
from hypothesis import strategies as st

from synthdata.config.recipe import LongtailSettings, SplitSettings
from synthdata.data.card import read_card
from synthdata.data.ingest import ingest
from synthdata.data.longtail import build_longtail, plan_longtail
from synthdata.data.manifest import class_counts, read_manifest
from synthdata.data.sources import get_source
from synthdata.errors import DataError

CLASSES = ["c0", "c1", "c2", "c3", "c4"]


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    root = tmp_path_factory.mktemp("lt")
    tree = make_image_tree(root / "tree", {c: 40 for c in CLASSES})
    out = root / "balanced"
    ingest(get_source("imagefolder", path=str(tree), dataset="balanced"), out, split=SplitSettings(0.1, 0.2, seed=0))
    return out


def test_counts_follow_the_exponential_profile_exactly(parent, tmp_path):
    out, plan = build_longtail(parent, tmp_path / "lt", LongtailSettings(imbalance=10, max_per_class=20, seed=0))
    # n_i = int(20 * 10^(-i/4)) for ranks 0..4
    assert [plan.targets[c] for c in plan.ranking] == [20, 11, 6, 3, 2]
    assert sorted(plan.ranking) == CLASSES
    assert class_counts(read_manifest(out), "train") == {c: plan.targets[c] for c in CLASSES}
    card = read_card(out)
    assert card.derived_from["ranking"] == plan.ranking
    assert card.derived_from["parent_manifest_sha256"] == read_card(parent).manifest_sha256


def test_test_split_is_copied_whole_and_byte_identical(parent, tmp_path):
    out, _ = build_longtail(parent, tmp_path / "lt", LongtailSettings(imbalance=10, max_per_class=20))
    before, after = read_manifest(parent), read_manifest(out)
    test_before = before[before["split"] == "test"].reset_index(drop=True)
    test_after = after[after["split"] == "test"].reset_index(drop=True)
    assert test_before.equals(test_after)
    for relpath in test_after["relpath"]:
        assert (out / relpath).read_bytes() == (parent / relpath).read_bytes()


def test_validation_keeps_the_train_fractions(parent, tmp_path):
    out, plan = build_longtail(parent, tmp_path / "lt", LongtailSettings(imbalance=10, max_per_class=20))
    val_before, val_after = class_counts(read_manifest(parent), "val"), class_counts(read_manifest(out), "val")
    train_before = class_counts(read_manifest(parent), "train")
    for name in CLASSES:
        assert val_after[name] == max(1, round(val_before[name] * plan.targets[name] / train_before[name]))


def test_same_seed_same_dataset_other_seed_other_rare_class(parent, tmp_path):
    settings = LongtailSettings(imbalance=10, max_per_class=20, seed=4)
    build_longtail(parent, tmp_path / "a", settings)
    build_longtail(parent, tmp_path / "b", settings)
    assert read_card(tmp_path / "a").manifest_sha256 == read_card(tmp_path / "b").manifest_sha256
    rankings = {
        tuple(plan_longtail({c: 28 for c in CLASSES}, CLASSES, LongtailSettings(imbalance=4, seed=s)).ranking)
        for s in range(6)
    }
    assert len(rankings) > 1


def test_default_n_max_is_the_largest_feasible(parent, tmp_path):
    _, plan = build_longtail(parent, tmp_path / "lt", LongtailSettings(imbalance=4))
    train = class_counts(read_manifest(parent), "train")
    assert plan.n_max == train[plan.ranking[0]] == 28


def test_infeasible_profile_names_the_class(parent, tmp_path):
    with pytest.raises(DataError, match=r"class 'c\d' has 28 train images but the profile asks for 500"):
        build_longtail(parent, tmp_path / "lt", LongtailSettings(imbalance=1, max_per_class=500))
    assert not (tmp_path / "lt").exists()
    with pytest.raises(DataError, match="leaves class"):
        build_longtail(parent, tmp_path / "lt", LongtailSettings(imbalance=1000, max_per_class=20))


def test_disabled_keeps_every_image(parent, tmp_path):
    out, _ = build_longtail(parent, tmp_path / "all", LongtailSettings(enabled=False))
    assert len(read_manifest(out)) == len(read_manifest(parent))


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=1, max_value=5000), min_size=2, max_size=12),
    imbalance=st.floats(min_value=1.0, max_value=500.0),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_plan_properties(counts, imbalance, seed):
    classes = [f"k{i}" for i in range(len(counts))]
    available = dict(zip(classes, counts, strict=True))
    try:
        plan = plan_longtail(available, classes, LongtailSettings(imbalance=imbalance, seed=seed))
    except DataError as exc:
        assert "leaves class" in str(exc)  # only an empty tail class may be refused by default
        return
    targets = [plan.targets[c] for c in plan.ranking]
    assert sorted(plan.ranking) == sorted(classes)
    assert targets == sorted(targets, reverse=True)
    assert targets[0] == plan.n_max
    assert all(plan.targets[c] <= available[c] for c in classes)
    last = len(classes) - 1
    for rank, name in enumerate(plan.ranking):
        assert plan.targets[name] == int(plan.n_max * imbalance ** (-rank / last) + 1e-9)
