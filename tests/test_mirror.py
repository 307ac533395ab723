"""One integration test per real source, reading the offline mirror (skipped without one)."""

from __future__ import annotations

import pytest
from conftest import MIRROR

from synthdata.config.recipe import SplitSettings
from synthdata.data.card import read_card
from synthdata.data.ingest import ingest
from synthdata.data.manifest import read_manifest
from synthdata.data.sources import BUILTIN

pytestmark = [
    pytest.mark.mirror,
    pytest.mark.skipif(
        MIRROR is None, reason="no data mirror: set SYNTHDATA_DATA_MIRROR or put shared/data beside the checkout"
    ),
]

# source -> (images in the source, (width, height, channels), official test images)
EXPECTED = {
    "pbc": (17_092, (32, 32, 3), None),
    "pneumoniamnist": (4_708 + 524 + 624, (28, 28, 1), 624),
    "breastmnist": (546 + 78 + 156, (28, 28, 1), 156),
    "eurosat": (21_600, (64, 64, 3), 2_700),
    "gtsrb": (23_189 + 3_990, (32, 32, 3), 3_990),
    "cifar10": (60_000, (32, 32, 3), 10_000),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_source(name, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHDATA_DATA_MIRROR", str(MIRROR))
    total, shape, official_test = EXPECTED[name]
    result = ingest(BUILTIN[name], tmp_path / name, split=SplitSettings(val_fraction=0.1, test_fraction=0.2))
    frame, card = read_manifest(tmp_path / name), read_card(tmp_path / name)
    assert len(frame) + sum(result.removed.values()) == total  # every source image kept or accounted for
    assert (card.width, card.height, card.channels) == shape
    assert card.classes == list(BUILTIN[name].info.classes)
    assert set(frame["split"]) == {"train", "val", "test"}
    assert frame["sha256"].is_unique
    test = int((frame["split"] == "test").sum())
    if official_test is not None:
        assert official_test - 5 <= test <= official_test  # only exact duplicates inside test are removed
    else:
        assert abs(test / len(frame) - 0.2) < 0.01
    if name == "gtsrb":
        train_val = frame[frame["split"] != "test"]
        assert (train_val.groupby("group")["split"].nunique() == 1).all()
        assert train_val["group"].nunique() > 700
