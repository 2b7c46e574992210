"""Key -> local path for download_dir: nothing ever lands outside the folder."""
from __future__ import annotations

import os
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosfast.transfer.keypath import (
    LocalTree,
    PathConflictError,
    UnsafeKeyError,
    _unsafe_character,
    strip_prefix,
)

# Characters that make paths interesting: separators, dots, NUL, controls, unicode, surrogates.
KEY_ALPHABET = st.sampled_from(list("ab./\\\x00\n\x7f\x85 ~é文") + ["\ud800", "\U0001f600"])
KEYS = st.text(KEY_ALPHABET, min_size=1, max_size=40) | st.text(min_size=1, max_size=40)


def inside(root: str, path: str) -> bool:
    root, path = os.path.realpath(root), os.path.realpath(path)
    return os.path.commonpath([root, path]) == root


@settings(max_examples=800, deadline=None)
@given(key=KEYS)
def test_no_generated_key_maps_outside_the_folder(tmp_path_factory, key):
    root = str(tmp_path_factory.getbasetemp() / "root")
    tree = LocalTree(root)
    try:
        placement = tree.place(key)
    except UnsafeKeyError as exc:
        assert exc.key == key and exc.reason
        return
    assert inside(root, placement.path)
    assert placement.path != os.path.abspath(root) or placement.folder
    # The path spells the key: no component was dropped, merged or reinterpreted.
    relative = os.path.relpath(placement.path, os.path.abspath(root))
    expected = key[:-1] if key.endswith("/") else key
    assert relative.split(os.sep) == expected.split("/")
    assert placement.folder == key.endswith("/")


@settings(max_examples=150, deadline=None)
@given(keys=st.lists(KEYS, min_size=2, max_size=8, unique=True))
def test_distinct_accepted_file_keys_get_distinct_paths(tmp_path_factory, keys):
    tree = LocalTree(str(tmp_path_factory.getbasetemp() / "root"))
    files = {}
    for key in sorted(keys):
        try:
            placement = tree.place(key)
        except (UnsafeKeyError, PathConflictError):
            continue
        if not placement.folder:
            assert placement.path not in files, (key, files[placement.path])
            files[placement.path] = key
    paths = list(files)
    for path in paths:  # no accepted file is the ancestor folder of another accepted file
        assert not any(other.startswith(path + os.sep) for other in paths)


@pytest.mark.parametrize("key, reason", [
    ("../x", "'..' path component"),
    ("a/../../x", "'..' path component"),
    ("a/..", "'..' path component"),
    ("./a", "'.' path component"),
    ("/etc/passwd", "absolute path"),
    ("a//b", "empty path component"),
    ("a\\..\\..\\x", "backslash"),
    ("a\x00b", "NUL"),
    ("a\nb", "control character"),
    ("a\x1b[31mred", "control character"),
    ("a\x85b", "control character"),
    ("x" * 256, "NAME_MAX"),
    ("d/" + "é" * 128, "NAME_MAX"),  # 256 bytes in UTF-8, 128 characters
    ("a\ud800", "not valid UTF-8"),
])
def test_unsafe_keys_are_refused_with_a_reason(tmp_path, key, reason):
    with pytest.raises(UnsafeKeyError, match=reason) as info:
        LocalTree(str(tmp_path)).place(key)
    assert info.value.key == key
    assert list(tmp_path.iterdir()) == []


def test_path_longer_than_path_max_is_refused(tmp_path):
    key = "/".join(["d" * 200] * 25)  # each name fine, the whole path about 5000 bytes
    with pytest.raises(UnsafeKeyError, match="PATH_MAX"):
        LocalTree(str(tmp_path)).place(key)


@pytest.mark.parametrize("key", ["a b", " lead", "trail ", "...", "..a", "a..", ".hidden", "文件/数据.bin",
                                 "emoji\U0001f600", "semi;colon", "q?x=1&y", "%2e%2e/x", "~", "-rf"])
def test_odd_but_safe_keys_map_verbatim(tmp_path, key):
    placement = LocalTree(str(tmp_path)).place(key)
    assert placement.path == os.path.join(str(tmp_path), *key.split("/"))
    assert not placement.folder


def test_prefix_folder_part_is_stripped(tmp_path):
    assert strip_prefix("data/x/y", "data/") == "x/y"
    assert strip_prefix("data/images/1", "data/ima") == "images/1"
    assert strip_prefix("top", "") == "top"
    with pytest.raises(ValueError, match="not under prefix"):
        strip_prefix("other/x", "data/")
    tree = LocalTree(str(tmp_path), prefix="data/")
    assert tree.place("data/x/y").path == os.path.join(str(tmp_path), "x", "y")
    root_marker = tree.place("data/")
    assert root_marker.folder and root_marker.path == str(tmp_path)
    with pytest.raises(UnsafeKeyError, match="empty path component"):
        tree.place("data//x")


def test_folder_markers_are_folders_not_files(tmp_path):
    tree = LocalTree(str(tmp_path))
    marker = tree.place("a/b/")
    assert marker.folder and marker.path == os.path.join(str(tmp_path), "a", "b")
    tree.make_folder(marker)
    assert (tmp_path / "a" / "b").is_dir()
    assert not tree.place("a/b/c").folder  # a file inside a marked folder is fine


def test_file_listed_first_keeps_its_place_and_keys_under_it_are_refused(tmp_path):
    tree = LocalTree(str(tmp_path))
    for key in sorted(["a", "a-x", "a/b", "a/c/d", "a/"]):  # COS listing order
        if key in ("a", "a-x"):
            tree.place(key)
            continue
        with pytest.raises(PathConflictError, match=r"'a' is a file \(key 'a'\)"):
            tree.place(key)


def test_folder_placed_first_refuses_the_file(tmp_path):
    tree = LocalTree(str(tmp_path))
    tree.place("a/b")
    with pytest.raises(PathConflictError, match=r"'a' is a folder \(it holds key 'a/b'\)"):
        tree.place("a")
    with pytest.raises(PathConflictError, match="already placed"):
        tree.place("a/b")


def test_make_folder_tells_which_folders_are_new_or_empty(tmp_path):
    # A batch looks for an earlier local copy only in folders that existed before the run.
    (tmp_path / "old").mkdir()
    tree = LocalTree(str(tmp_path / "root"))
    assert tree.make_root() is True and (tmp_path / "root").is_dir()
    assert tree.make_folder(tree.place("x/y/z")) is True and (tmp_path / "root" / "x" / "y").is_dir()
    assert tree.make_folder(tree.place("x/y/w")) is True  # remembered, not looked up again
    assert tree.make_folder(tree.place("top")) is True  # the root itself was made by make_root

    (tmp_path / "root" / "x" / "y" / "z").write_bytes(b"from the first run")
    again = LocalTree(str(tmp_path / "root"))
    assert again.make_root() is False
    assert again.make_folder(again.place("x/y/v")) is False
    assert again.make_folder(again.place("x/new/v")) is True
    existing = LocalTree(str(tmp_path))
    assert existing.make_root() is False
    assert existing.make_folder(existing.place("old/a")) is True  # it exists, but holds nothing
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_bytes(b"")
    assert existing.make_folder(existing.place("full/a")) is False


def test_make_root_refuses_a_file_in_its_place(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises((FileExistsError, NotADirectoryError)):
        LocalTree(str(tmp_path / "f")).make_root()
    with pytest.raises(NotADirectoryError):
        LocalTree(str(tmp_path / "f" / "below")).make_root()
    assert (tmp_path / "f").read_bytes() == b"x"


def test_local_file_in_the_way_of_a_folder(tmp_path):
    (tmp_path / "a").write_bytes(b"local")
    tree = LocalTree(str(tmp_path))
    placement = tree.place("a/b")
    with pytest.raises(PathConflictError, match="local file is in the way of folder 'a'"):
        tree.make_folder(placement)
    assert (tmp_path / "a").read_bytes() == b"local"


def test_refused_characters_are_exactly_nul_backslash_and_unicode_controls():
    # The placement checks with one regex; Unicode's category Cc is what it must match.
    refused = [cp for cp in range(0x110000) if _unsafe_character(chr(cp)) is not None]
    expected = [cp for cp in range(0x110000) if unicodedata.category(chr(cp)) == "Cc" or chr(cp) == "\\"]
    assert refused == expected
    assert _unsafe_character("a\x00b") == "it contains a NUL character"
    assert _unsafe_character("a\\b") == "it contains a backslash"
    assert _unsafe_character("ok\x85") == "it contains the control character '\\x85'"
