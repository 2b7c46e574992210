"""Fuzzing where download_dir writes: keys under any listing prefix map inside the target folder
or are refused (UnsafeKeyError / PathConflictError), and a whole download_dir run over a bucket
of hostile keys writes nothing outside the folder and only the objects' own bytes inside it.
(tests/test_keypath.py fuzzes keys without a prefix.)"""
from __future__ import annotations

import os
import random
import secrets
from pathlib import Path

import pytest
from fuzz_strategies import FUZZ
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cosfast import CosConfig, CosS3Client
from cosfast.transfer.keypath import KeyPlacementError, LocalTree, strip_prefix

# Components that try to escape, plus ordinary and odd names.
COMPONENTS = st.sampled_from(["..", ".", "", "a", "b", "a.b", "..a", "a..", "...", " ", "~", "é",
                              "\\..", "..\\..", "%2e%2e", "\x00", "\n", "\x7f", "\u202e", "文", "a" * 256])
RELATIVE = st.lists(COMPONENTS, min_size=0, max_size=6).map("/".join)
PREFIXES = st.sampled_from(["", "p/", "p", "p/q", "p/q/", "../", "/", "p/../"])


def inside(root: str, path: str) -> bool:
    root, path = os.path.realpath(root), os.path.realpath(path)
    return os.path.commonpath([root, path]) == root


@FUZZ
@given(PREFIXES, RELATIVE, st.sampled_from(["", "/", "/x"]))
def test_keys_under_any_prefix_map_inside_the_folder_or_are_refused(tmp_path_factory, prefix, relative, tail):
    root = str(tmp_path_factory.getbasetemp() / "root")
    folder_part = prefix[: prefix.rfind("/") + 1]
    key = folder_part + relative + tail
    tree = LocalTree(root, prefix)
    try:
        placement = tree.place(key)
    except KeyPlacementError as exc:
        assert exc.key == key and exc.reason
        return
    assert inside(root, placement.path)
    assert os.path.relpath(placement.path, os.path.abspath(root)).replace(os.sep, "/") in (
        strip_prefix(key, prefix).rstrip("/"), ".")


@FUZZ
@given(PREFIXES, st.text(max_size=20))
def test_a_key_outside_the_prefix_is_a_value_error(prefix, key):
    folder_part = prefix[: prefix.rfind("/") + 1]
    if key.startswith(folder_part):
        assert strip_prefix(key, prefix) == key[len(folder_part):]
    else:
        with pytest.raises(ValueError):
            strip_prefix(key, prefix)


HOSTILE = st.lists(RELATIVE.filter(bool), min_size=1, max_size=8, unique=True)


@pytest.mark.timeout(120)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(HOSTILE)
def test_download_dir_over_hostile_keys_writes_only_inside_its_folder(cos_emulator, tmp_path_factory, relatives):
    bucket = cos_emulator.create_bucket(f"fz{secrets.token_hex(4)}-1250000000")
    rng = random.Random(len(relatives))
    objects = {}
    for relative in relatives:
        key = "p/" + relative
        objects[key] = rng.randbytes(rng.randint(0, 3000))
        cos_emulator.put_object(bucket, key, objects[key])
    sandbox = tmp_path_factory.mktemp("sandbox")
    target = sandbox / "in" / "target"
    client = CosS3Client(CosConfig(**cos_emulator.sdk_config()), retry=0)
    summary = client.download_dir(bucket, "p/", str(target), MAXThread=4)
    written = {}
    for folder, _dirs, files in os.walk(sandbox):
        for name in files:
            path = os.path.join(folder, name)
            assert inside(str(target), path), path
            written[os.path.relpath(path, target).replace(os.sep, "/")] = Path(path).read_bytes()
    # Every file is an object's own bytes at its key's path; every other key was reported.
    for relative, data in written.items():
        assert objects["p/" + relative] == data
    refused = {key for key, _reason in summary.failed}
    assert {"p/" + r for r in written} | refused | {k for k in objects if k.endswith("/")} >= set(objects)
    assert not any(".cosfast" in name for name in written)
