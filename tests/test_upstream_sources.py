"""The built-in sources without the mirror: each reads its publisher's archive layout.

Each test builds a tiny seeded archive in the publisher's layout, pins the source's upstream
files to it (the real pins name the real archives) and ingests with no mirror set, from the
cache or through a ``file://`` download.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthdata.config.recipe import SplitSettings
from synthdata.data.card import read_card
from synthdata.data.fetch import cache_root
from synthdata.data.images import decode_image
from synthdata.data.ingest import Resize, ingest
from synthdata.data.manifest import read_manifest
from synthdata.data.sources import BUILTIN
from synthdata.data.sources.eurosat import CLASSES as EUROSAT_CLASSES
from synthdata.data.sources.gtsrb import CLASSES as GTSRB_CLASSES
from synthdata.data.sources.pbc import CLASSES as PBC_CLASSES
from synthdata.data.sources.pbc import PIN_ENV, to_mirror_form
from synthdata.errors import ChecksumError, DataError

CIFAR_CLASSES = BUILTIN["cifar10"].info.classes


def _encoded(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tar_gz(entries: dict[str, bytes], link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            archive.addfile(info)
    return buffer.getvalue()


def _pin(monkeypatch, name: str, archives: dict[str, bytes], *, cache: bool = True, tmp: Path | None = None):
    """Pin ``name``'s upstream files to ``archives``: placed in the cache, or (``tmp``) served
    by ``file://`` URLs from there."""
    source = BUILTIN[name]
    pins = []
    for file in source.info.upstream:
        data = archives[file.path]
        url = file.url
        if tmp is not None:
            served = tmp / "served" / Path(file.path).name
            served.parent.mkdir(parents=True, exist_ok=True)
            served.write_bytes(data)
            url = served.as_uri()
        if cache:
            (cache_root() / file.path).parent.mkdir(parents=True, exist_ok=True)
            (cache_root() / file.path).write_bytes(data)
        if file.pin_env is not None:  # the user pins it (see the PBC tests)
            pins.append(replace(file, url=url))
            continue
        sha256, md5 = hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()
        pins.append(replace(file, sha256=sha256, md5=md5, url=url))
    monkeypatch.setattr(source, "info", replace(source.info, upstream=tuple(pins)))
    return source


def _cifar_tarball(seed: int = 0, batch_1: bytes | None = None) -> tuple[bytes, dict[str, np.ndarray]]:
    """Five train batches and a test batch of 10 images (one per class), pickled as the
    publisher's are (dicts of a uint8 (N, 3072) array and a list of labels)."""
    rng = np.random.default_rng(seed)
    entries, data = {}, {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data[name] = rng.integers(0, 256, size=(10, 3072), dtype=np.uint8)
        labels = [int(label) for label in rng.permutation(10)]
        batch = {
            "batch_label": name,
            "labels": labels,
            "data": data[name],
            "filenames": [f"{i}.png" for i in range(10)],
        }
        entries[f"cifar-10-batches-py/{name}"] = pickle.dumps(batch, protocol=4)
    if batch_1 is not None:
        entries["cifar-10-batches-py/data_batch_1"] = batch_1
    entries["cifar-10-batches-py/batches.meta"] = pickle.dumps({"label_names": list(CIFAR_CLASSES)}, protocol=4)
    entries["cifar-10-batches-py/readme.html"] = b"<html></html>"
    return _tar_gz(entries), data


def test_cifar10_python_tarball(tmp_path, monkeypatch):
    tarball, data = _cifar_tarball()
    _pin(monkeypatch, "cifar10", {"cifar10/cifar-10-python.tar.gz": tarball})
    out = tmp_path / "cifar10"
    ingest(BUILTIN["cifar10"], out, split=SplitSettings(val_fraction=0.2))
    frame, card = read_manifest(out), read_card(out)
    assert card.classes == list(CIFAR_CLASSES) and (card.width, card.height, card.channels) == (32, 32, 3)
    assert frame["split"].value_counts().to_dict() == {"train": 40, "val": 10, "test": 10}
    assert (frame[frame["split"] == "test"]["label_name"].value_counts() == 1).all()
    row = frame[frame["origin"] == "cifar-10-python.tar.gz:cifar-10-batches-py/test_batch[3]"].iloc[0]
    expected = data["test_batch"][3].reshape(3, 32, 32).transpose(1, 2, 0)
    assert (decode_image((out / row["relpath"]).read_bytes(), "x") == expected).all()  # the exact pixels
    [record] = card.files
    assert (
        record["path"] == "cifar10/cifar-10-python.tar.gz" and record["sha256"] == hashlib.sha256(tarball).hexdigest()
    )


def test_cifar10_pickle_naming_another_global_is_refused(tmp_path, monkeypatch):
    witness = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {witness}",))

    tarball, _ = _cifar_tarball(batch_1=pickle.dumps(Exploit(), protocol=4))
    _pin(monkeypatch, "cifar10", {"cifar10/cifar-10-python.tar.gz": tarball})
    with pytest.raises(DataError, match=r"data_batch_1: the pickle names (posix|os|nt)\.system.*refused") as caught:
        ingest(BUILTIN["cifar10"], tmp_path / "out", split=SplitSettings())
    assert "\n" not in str(caught.value)
    assert not witness.exists() and not (tmp_path / "out").exists()


def test_cifar10_tar_with_a_link_is_refused(tmp_path, monkeypatch):
    entries = {"cifar-10-batches-py/batches.meta": pickle.dumps({"label_names": list(CIFAR_CLASSES)})}
    _pin(monkeypatch, "cifar10", {"cifar10/cifar-10-python.tar.gz": _tar_gz(entries, link="cifar-10-batches-py/x")})
    with pytest.raises(DataError, match="member 'cifar-10-batches-py/x' is a link"):
        ingest(BUILTIN["cifar10"], tmp_path / "out", split=SplitSettings())


def test_tampered_archive_is_one_checksum_line_and_nothing_published(tmp_path, monkeypatch):
    tarball, _ = _cifar_tarball()
    _pin(monkeypatch, "cifar10", {"cifar10/cifar-10-python.tar.gz": tarball})
    cached = cache_root() / "cifar10/cifar-10-python.tar.gz"
    cached.write_bytes(tarball[:-1] + bytes([tarball[-1] ^ 1]))
    with pytest.raises(ChecksumError, match=r"cifar-10-python.tar.gz: checksum mismatch \(sha256") as caught:
        ingest(BUILTIN["cifar10"], tmp_path / "c", split=SplitSettings())
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "c").exists() and not list(tmp_path.glob(".staging-*"))


def test_file_url_download_goes_through_the_cache(tmp_path, monkeypatch):
    tarball, _ = _cifar_tarball()
    _pin(monkeypatch, "cifar10", {"cifar10/cifar-10-python.tar.gz": tarball}, cache=False, tmp=tmp_path)
    ingest(BUILTIN["cifar10"], tmp_path / "out", split=SplitSettings(val_fraction=0.2))
    cached = cache_root() / "cifar10/cifar-10-python.tar.gz"
    assert cached.read_bytes() == tarball and not list(cached.parent.glob(".*.part"))


def test_file_url_download_with_wrong_checksum_leaves_nothing(tmp_path, monkeypatch):
    tarball, _ = _cifar_tarball()
    source = _pin(monkeypatch, "cifar10", {"cifar10/cifar-10-python.tar.gz": tarball}, cache=False, tmp=tmp_path)
    [file] = source.info.upstream
    monkeypatch.setattr(source, "info", replace(source.info, upstream=(replace(file, md5="0" * 32),)))
    with pytest.raises(ChecksumError, match=r"checksum mismatch \(md5 [0-9a-f]{32}, expected 0{32}\)"):
        ingest(source, tmp_path / "out", split=SplitSettings())
    folder = cache_root() / "cifar10"
    assert not folder.exists() or not any(folder.iterdir())
    assert not (tmp_path / "out").exists()


def _eurosat_archives(seed: int = 0) -> dict[str, bytes]:
    """Three 16x16 JPEGs per class in ``2750/<Class>/``; image n of each class in split n."""
    rng = np.random.default_rng(seed)
    images, lists = {}, {"train": [], "val": [], "test": []}
    for name in EUROSAT_CLASSES:
        for n, split in enumerate(lists, start=1):
            images[f"2750/{name}/{name}_{n}.jpg"] = _encoded(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), "JPEG")
            lists[split].append(f"{name}_{n}.jpg")
    archives = {"eurosat/EuroSAT.zip": _zip(images)}
    for split, names in lists.items():
        archives[f"eurosat/eurosat-{split}.txt"] = ("\n".join(names) + "\n").encode()
    return archives


def test_eurosat_zip_with_torchgeo_split_lists(tmp_path, monkeypatch):
    archives = _eurosat_archives()
    _pin(monkeypatch, "eurosat", archives)
    out = tmp_path / "eurosat"
    ingest(BUILTIN["eurosat"], out, split=SplitSettings(val_fraction=0.2))
    frame, card = read_manifest(out), read_card(out)
    assert card.classes == list(EUROSAT_CLASSES) and card.split_protocol == "official train/val/test"
    for n, split in enumerate(("train", "val", "test"), start=1):
        rows = frame[frame["split"] == split]
        assert len(rows) == 10 and rows["origin"].str.endswith(f"_{n}.jpg").all()
    row = frame[frame["origin"] == "EuroSAT.zip:2750/River/River_2.jpg"].iloc[0]
    with zipfile.ZipFile(io.BytesIO(archives["eurosat/EuroSAT.zip"])) as archive:
        expected = decode_image(archive.read("2750/River/River_2.jpg"), "x")
    assert row["label_name"] == "River" and (decode_image((out / row["relpath"]).read_bytes(), "x") == expected).all()
    assert [f["path"] for f in card.files][0] == "eurosat/EuroSAT.zip" and all("md5" in f for f in card.files)


def test_eurosat_image_in_no_split_list_is_refused(tmp_path, monkeypatch):
    archives = _eurosat_archives()
    archives["eurosat/eurosat-test.txt"] = archives["eurosat/eurosat-test.txt"].replace(b"Forest_3.jpg\n", b"")
    _pin(monkeypatch, "eurosat", archives)
    with pytest.raises(DataError, match="2750/Forest/Forest_3.jpg: named in none of the split lists"):
        ingest(BUILTIN["eurosat"], tmp_path / "out", split=SplitSettings())


def _gt(rows: list[tuple[str, int]]) -> bytes:
    header = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"
    return (header + "".join(f"{name};24;20;1;1;19;23;{label}\n" for name, label in rows)).encode()


def _gtsrb_archives(seed: int = 0) -> dict[str, bytes]:
    """Two tracks of two frames per class (24 wide, 20 high PPMs), one test image per class."""
    rng = np.random.default_rng(seed)

    def ppm() -> bytes:
        return _encoded(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8), "PPM")

    train = {}
    for label in range(len(GTSRB_CLASSES)):
        folder = f"GTSRB/Training/{label:05d}"
        names = [f"{track:05d}_{frame:05d}.ppm" for track in range(2) for frame in range(2)]
        train.update({f"{folder}/{name}": ppm() for name in names})
        train[f"{folder}/GT-{label:05d}.csv"] = _gt([(name, label) for name in names])
    test = {f"GTSRB/Final_Test/Images/{i:05d}.ppm": ppm() for i in range(len(GTSRB_CLASSES))}
    labels = [(f"{i:05d}.ppm", i) for i in range(len(GTSRB_CLASSES))]
    return {
        "gtsrb/GTSRB-Training_fixed.zip": _zip(train),
        "gtsrb/GTSRB_Final_Test_Images.zip": _zip(test),
        "gtsrb/GTSRB_Final_Test_GT.zip": _zip({"GT-final_test.csv": _gt(labels)}),
    }


def test_gtsrb_archives_split_by_track_and_squashed_to_32(tmp_path, monkeypatch):
    _pin(monkeypatch, "gtsrb", _gtsrb_archives())
    out = tmp_path / "gtsrb"
    ingest(BUILTIN["gtsrb"], out, split=SplitSettings(val_fraction=0.5), resize=Resize(32, "squash"))
    frame, card = read_manifest(out), read_card(out)
    assert card.classes == list(GTSRB_CLASSES) and (card.width, card.height) == (32, 32)
    assert card.resize["native_sizes"] == {"24x20": 43 * 5}
    assert frame["split"].value_counts().to_dict() == {"train": 86, "val": 86, "test": 43}
    train_val = frame[frame["split"] != "test"]
    assert (train_val.groupby("group")["split"].nunique() == 1).all() and train_val["group"].nunique() == 86
    assert set(train_val["group"]) == {f"{name}/{track:05d}" for name in GTSRB_CLASSES for track in range(2)}
    test = frame[frame["split"] == "test"].set_index("origin")
    assert test.loc["GTSRB_Final_Test_Images.zip:GTSRB/Final_Test/Images/00014.ppm", "label_name"] == "stop"


def test_gtsrb_training_table_that_disagrees_is_refused(tmp_path, monkeypatch):
    archives = _gtsrb_archives()
    with zipfile.ZipFile(io.BytesIO(archives["gtsrb/GTSRB-Training_fixed.zip"])) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    entries["GTSRB/Training/00003/GT-00003.csv"] = _gt([("00000_00000.ppm", 4)])
    archives["gtsrb/GTSRB-Training_fixed.zip"] = _zip(entries)
    _pin(monkeypatch, "gtsrb", archives)
    with pytest.raises(DataError, match=r"00003/00000_00000.ppm: GT-00003.csv does not give it ClassId 3"):
        ingest(BUILTIN["gtsrb"], tmp_path / "out", split=SplitSettings(), resize=Resize(32, "squash"))


def _pbc_zip(seed: int = 0) -> tuple[bytes, dict[str, bytes]]:
    """Five 212x206 JPEGs per class (a centre 200x200 crop then 32x32), and macOS metadata."""
    rng = np.random.default_rng(seed)
    images = {
        f"PBC_dataset_normal_DIB/{name}/{name[:2].upper()}_{i}.jpg": _encoded(
            rng.integers(0, 256, (212, 206, 3), dtype=np.uint8), "JPEG"
        )
        for name in PBC_CLASSES
        for i in range(5)
    }
    extra = {"__MACOSX/PBC_dataset_normal_DIB/basophil/._BA_0.jpg": b"\x00\x05\x16\x07"}
    return _zip({**images, **extra}), images


def test_pbc_original_zip_needs_the_users_checksum(tmp_path, monkeypatch):
    archive, _ = _pbc_zip()
    _pin(monkeypatch, "pbc", {"pbc/PBC_dataset_normal_DIB.zip": archive})
    with pytest.raises(DataError, match=f"no publisher or kept library publishes a checksum.*set {PIN_ENV}") as caught:
        ingest(BUILTIN["pbc"], tmp_path / "out", split=SplitSettings())
    assert "\n" not in str(caught.value) and not (tmp_path / "out").exists()
    monkeypatch.setenv(PIN_ENV, "0" * 64)
    with pytest.raises(ChecksumError, match="PBC_dataset_normal_DIB.zip: checksum mismatch"):
        ingest(BUILTIN["pbc"], tmp_path / "out", split=SplitSettings())


def test_pbc_original_zip_converted_as_the_mirror(tmp_path, monkeypatch):
    archive, images = _pbc_zip()
    _pin(monkeypatch, "pbc", {"pbc/PBC_dataset_normal_DIB.zip": archive}, cache=False, tmp=tmp_path)
    monkeypatch.setenv(PIN_ENV, hashlib.sha256(archive).hexdigest())
    out = tmp_path / "pbc"
    ingest(BUILTIN["pbc"], out, split=SplitSettings(val_fraction=0.2, test_fraction=0.2, seed=1))
    frame, card = read_manifest(out), read_card(out)
    assert card.classes == list(PBC_CLASSES) and (card.width, card.height, card.channels) == (32, 32, 3)
    assert len(frame) == 40 and frame.groupby("label_name").size().to_dict() == dict.fromkeys(PBC_CLASSES, 5)
    assert frame["split"].value_counts().to_dict() == {"train": 24, "val": 8, "test": 8}
    name = "PBC_dataset_normal_DIB/ig/IG_3.jpg"
    row = frame[frame["origin"] == f"PBC_dataset_normal_DIB.zip:{name}"].iloc[0]
    expected = to_mirror_form(decode_image(images[name], "x"), "x")
    assert (decode_image((out / row["relpath"]).read_bytes(), "x") == expected).all()
    assert card.files[0]["sha256"] == hashlib.sha256(archive).hexdigest() and PIN_ENV in card.files[0]["pinned_by"]
