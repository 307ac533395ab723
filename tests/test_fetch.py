"""Mirror, cache and download of pinned files: checksums always verified, nothing half-written."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from synthdata.data.fetch import RemoteFile, cache_root, card_record, resolve
from synthdata.errors import ChecksumError, DataError

PAYLOAD = b"synthdata test payload\n" * 100
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "file.bin").write_bytes(PAYLOAD)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_mirror_file_is_read_in_place_and_verified(tmp_path, monkeypatch):
    (tmp_path / "m" / "set").mkdir(parents=True)
    (tmp_path / "m" / "set" / "file.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("SYNTHDATA_DATA_MIRROR", str(tmp_path / "m"))
    assert resolve(RemoteFile("set/file.bin", SHA, None)) == tmp_path / "m" / "set" / "file.bin"


def test_mirror_checksum_mismatch(tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "file.bin").write_bytes(PAYLOAD + b"x")
    monkeypatch.setenv("SYNTHDATA_DATA_MIRROR", str(tmp_path / "m"))
    with pytest.raises(ChecksumError, match=r"file.bin: checksum mismatch .*expected " + SHA):
        resolve(RemoteFile("file.bin", SHA, None))


def test_missing_mirror_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHDATA_DATA_MIRROR", str(tmp_path))
    with pytest.raises(DataError, match="missing mirror file"):
        resolve(RemoteFile("nope/file.bin", SHA, "http://127.0.0.1:9/never"))


def test_download_verifies_then_caches(server):
    path = resolve(RemoteFile("set/file.bin", SHA, f"{server}/file.bin"))
    assert path.read_bytes() == PAYLOAD
    assert path == cache_root() / "set" / "file.bin"
    assert not list(path.parent.glob(".*.part"))
    assert resolve(RemoteFile("set/file.bin", SHA, "http://127.0.0.1:9/unused")) == path  # served from cache


def test_download_with_wrong_checksum_leaves_nothing(server):
    wrong = "0" * 64
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        resolve(RemoteFile("set/other.bin", wrong, f"{server}/file.bin"))
    assert not (cache_root() / "set").exists() or not any((cache_root() / "set").iterdir())


def test_no_url_and_no_mirror_says_what_to_do():
    with pytest.raises(DataError, match="set SYNTHDATA_DATA_MIRROR"):
        resolve(RemoteFile("repack/only.zip", SHA, None))


MD5 = hashlib.md5(PAYLOAD).hexdigest()


def test_md5_pin_alone_is_checked_and_the_card_gets_the_sha256(tmp_path):
    (tmp_path / "file.bin").write_bytes(PAYLOAD)
    file = RemoteFile("set/file.bin", None, (tmp_path / "file.bin").as_uri(), md5=MD5)
    assert resolve(file).read_bytes() == PAYLOAD
    assert card_record(file) == {"path": "set/file.bin", "sha256": SHA, "url": file.url, "md5": MD5}
    with pytest.raises(ChecksumError, match=r"checksum mismatch \(md5 [0-9a-f]{32}, expected f{32}\)"):
        resolve(RemoteFile("set/other.bin", None, file.url, md5="f" * 32))
    assert sorted(p.name for p in (cache_root() / "set").iterdir()) == ["file.bin"]


def test_file_url_missing_is_one_line(tmp_path):
    with pytest.raises(DataError, match=r"missing.bin: download failed \(.*No such file") as caught:
        resolve(RemoteFile("set/file.bin", SHA, (tmp_path / "missing.bin").as_uri()))
    assert "\n" not in str(caught.value) and not (cache_root() / "set" / ".file.bin.part").exists()


def test_other_url_schemes_are_refused():
    with pytest.raises(DataError, match="cannot download from a 'ftp' URL"):
        resolve(RemoteFile("set/file.bin", SHA, "ftp://example.org/file.bin"))


def test_a_pin_is_required_and_well_formed():
    with pytest.raises(ValueError, match="needs a sha256 or md5 pin"):
        RemoteFile("x.bin", None, None)
    with pytest.raises(ValueError, match="md5 pin 'abc' is not lower-case hex"):
        RemoteFile("x.bin", None, None, md5="abc")


def test_user_pin_from_the_environment(tmp_path, monkeypatch):
    (tmp_path / "file.bin").write_bytes(PAYLOAD)
    file = RemoteFile("set/file.bin", None, (tmp_path / "file.bin").as_uri(), pin_env="PIN_FOR_TEST")
    with pytest.raises(DataError, match="no publisher or kept library publishes a checksum.*set PIN_FOR_TEST"):
        resolve(file)
    monkeypatch.setenv("PIN_FOR_TEST", "not hex")
    with pytest.raises(DataError, match="PIN_FOR_TEST=not hex: not a sha256"):
        resolve(file)
    monkeypatch.setenv("PIN_FOR_TEST", SHA.upper())
    assert resolve(file).read_bytes() == PAYLOAD
    assert card_record(file)["sha256"] == SHA and "PIN_FOR_TEST" in card_record(file)["pinned_by"]
