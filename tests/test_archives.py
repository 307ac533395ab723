"""Reading folders and zips without leaving their root (synthdata/data/archives.py)."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

import pytest
from conftest import make_image_tree, png_bytes, zip_tree

from synthdata.data.archives import FileTree, safe_member_name
from synthdata.errors import DataError


def _zip_with(tmp_path: Path, member: zipfile.ZipInfo | str, data: bytes | str = b"x") -> Path:
    """A small valid class-folder zip plus one extra member."""
    tree = make_image_tree(tmp_path / "tree", {"a": 2, "b": 2})
    archive = zip_tree(tree, tmp_path / "data.zip")
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr(member, data)
    return archive


def _list(root: Path) -> list[PurePosixPath]:
    with FileTree(root) as tree:
        return list(tree.files())


# --- unsafe zip members -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../evil.png", "a/../../evil.png", "a/../evil.png"])
def test_zip_member_climbing_out_refused(tmp_path, name):
    archive = _zip_with(tmp_path, name, png_bytes(1))
    with pytest.raises(DataError) as info:
        _list(archive)
    message = str(info.value)
    assert "'..'" in message
    assert name in message
    assert str(archive) in message


@pytest.mark.parametrize("name", ["/etc/evil.png", "/evil.png"])
def test_zip_member_absolute_path_refused(tmp_path, name):
    archive = _zip_with(tmp_path, name, png_bytes(1))
    with pytest.raises(DataError) as info:
        _list(archive)
    assert "absolute path" in str(info.value)
    assert name in str(info.value)
    assert str(archive) in str(info.value)


def test_zip_symlink_member_refused(tmp_path):
    info = zipfile.ZipInfo("link.png")
    info.external_attr = 0o120777 << 16
    archive = _zip_with(tmp_path, info, "target")
    with pytest.raises(DataError) as exc:
        _list(archive)
    assert "symbolic link" in str(exc.value)
    assert "link.png" in str(exc.value)
    assert str(archive) in str(exc.value)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("../evil.png", "'..'"),
        ("..\\evil.png", "'..'"),
        ("a\\..\\..\\evil.png", "'..'"),
        ("/etc/passwd", "absolute path"),
        ("\\evil.png", "absolute path"),
        ("C:/evil.png", "absolute path"),
        ("C:evil.png", "absolute path"),
    ],
)
def test_safe_member_name_refuses(name, reason):
    with pytest.raises(DataError) as info:
        safe_member_name(name, "data.zip")
    assert reason in str(info.value)
    assert name in str(info.value)
    assert "data.zip" in str(info.value)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("a/001.png", "a/001.png"),
        ("a\\001.png", "a/001.png"),
        ("x..y.png", "x..y.png"),
        ("a/..b/c.png", "a/..b/c.png"),
    ],
)
def test_safe_member_name_accepts(name, expected):
    assert safe_member_name(name, "data.zip") == PurePosixPath(expected)


# --- unsafe folder entries --------------------------------------------------------------------


def test_folder_symlink_leaving_folder_refused(tmp_path):
    tree = make_image_tree(tmp_path / "tree", {"a": 2, "b": 2})
    outside = tmp_path / "outside.png"
    outside.write_bytes(png_bytes(99))
    link = tree / "a" / "zz-link.png"
    link.symlink_to(outside)
    with pytest.raises(DataError) as info:
        _list(tree)
    assert "symbolic link" in str(info.value)
    assert "zz-link.png" in str(info.value)


def test_folder_symlinked_directory_leaving_folder_refused(tmp_path):
    tree = make_image_tree(tmp_path / "tree", {"a": 2})
    elsewhere = make_image_tree(tmp_path / "elsewhere", {"b": 2}, seed=1)
    (tree / "b").symlink_to(elsewhere / "b", target_is_directory=True)
    with pytest.raises(DataError, match="symbolic link"):
        _list(tree)


def test_folder_symlink_inside_folder_allowed(tmp_path):
    tree = make_image_tree(tmp_path / "tree", {"a": 2})
    (tree / "a" / "copy.png").symlink_to(tree / "a" / "000.png")
    files = _list(tree)
    assert PurePosixPath("a/copy.png") in files
    with FileTree(tree) as ft:
        assert ft.read(PurePosixPath("a/copy.png")) == (tree / "a" / "000.png").read_bytes()


# --- folder and zip agree ---------------------------------------------------------------------


def test_folder_and_zip_list_and_read_the_same(tmp_path):
    tree = make_image_tree(tmp_path / "tree", {"b": 3, "a": 2, "c": 1}, splits=("train", "test"))
    archive = zip_tree(tree, tmp_path / "tree.zip")
    # Explicit directory entries in the zip are not files.
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr("train/", b"")
        z.writestr("train/a/", b"")
    expected = sorted(PurePosixPath(p.relative_to(tree).as_posix()) for p in tree.rglob("*.png"))
    with FileTree(tree) as folder_tree, FileTree(archive) as zip_files:
        from_folder = list(folder_tree.files())
        from_zip = list(zip_files.files())
        assert from_folder == expected
        assert from_zip == expected
        assert len(expected) == 12
        for member in expected:
            data = (tree / member).read_bytes()
            assert folder_tree.read(member) == data
            assert zip_files.read(member) == data
        assert zip_files.origin(expected[0]) == f"tree.zip:{expected[0]}"
        assert folder_tree.origin(expected[0]) == str(expected[0])


def test_files_are_sorted(tmp_path):
    tree = tmp_path / "tree"
    for name in ("z/1.png", "a/2.png", "m/0.png", "a/10.png"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(b"x")
    archive = tmp_path / "t.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in ("z/1.png", "a/2.png", "m/0.png", "a/10.png"):
            z.writestr(name, b"x")
    expected = [PurePosixPath(p) for p in ("a/10.png", "a/2.png", "m/0.png", "z/1.png")]
    assert _list(tree) == expected
    assert _list(archive) == expected


# --- not a folder or a zip --------------------------------------------------------------------


def test_plain_file_refused(tmp_path):
    path = tmp_path / "data.tar"
    path.write_bytes(b"this is neither a folder nor a zip archive" * 10)
    with pytest.raises(DataError) as info:
        FileTree(path)
    assert str(path) in str(info.value)
    assert "not a folder or a zip archive" in str(info.value)


def test_png_file_refused(tmp_path):
    path = tmp_path / "one.png"
    path.write_bytes(png_bytes(2))
    with pytest.raises(DataError, match="not a folder or a zip archive"):
        FileTree(path)


def test_missing_path_refused(tmp_path):
    path = tmp_path / "nope.zip"
    with pytest.raises(DataError) as info:
        FileTree(path)
    assert str(path) in str(info.value)
    assert "no such file or folder" in str(info.value)
