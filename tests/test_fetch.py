"""Mirror, cache and download of pinned files: checksums always verified, nothing half-written."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from synthdata.data.fetch import RemoteFile, cache_root, resolve
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
