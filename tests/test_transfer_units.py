"""Planning, resume records, retry delays and response-head parsing: the transfer layer's pure parts."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, strategies as st

from cosfast.transfer.plan import MIB, choose_part_size, split
from cosfast.transfer.record import CorruptRecordError, ObjectIdentity, ResumeRecord
from cosfast.transfer.response import parse_content_range
from cosfast.transfer.retry import RetryPolicy, parse_retry_after

IDENTITY = ObjectIdentity(bucket="b-1250000000", key="dir/obj", version_id=None, etag='"abc"',
                          size=10 * MIB, last_modified="Wed, 25 Nov 2026 00:00:00 GMT", crc64="123")


def test_part_size_follows_the_sdk_rules():
    assert choose_part_size(100 * MIB, 20, 10000) == 20 * MIB
    assert choose_part_size(100 * MIB, 0, 10000) == MIB  # never under 1 MiB
    # 10 parts at most: 20 MiB parts would make 11, so the size doubles to 40 MiB
    assert choose_part_size(201 * MIB, 20, 10) == 40 * MIB


@given(size=st.integers(0, 10**12), part=st.integers(1, 10**10))
def test_split_covers_the_object_exactly(size, part):
    if size // part > 10000:
        part = size // 10000 + 1
    parts = split(size, part)
    assert sum(p.length for p in parts) == size
    assert all(p.length > 0 for p in parts)
    assert all(a.end == b.offset for a, b in zip(parts, parts[1:]))
    assert [p.index for p in parts] == list(range(len(parts)))
    if parts:
        assert parts[0].offset == 0 and parts[-1].end == size


def test_record_round_trip_and_atomic_save(tmp_path):
    rec = ResumeRecord(IDENTITY, 4 * MIB, str(tmp_path / "t.tmp"), {0: (4 * MIB, 99), 2: (2 * MIB, 7)})
    path = str(tmp_path / "r")
    rec.save(path)
    loaded = ResumeRecord.load(path)
    assert loaded == rec
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no temp file left by the save


def test_record_detects_torn_and_edited_files(tmp_path):
    rec = ResumeRecord(IDENTITY, 4 * MIB, "/x/t.tmp", {0: (4 * MIB, 99)})
    raw = rec.to_bytes()
    path = tmp_path / "r"
    for bad in (raw[: len(raw) // 2], raw.replace(b"99", b"98"), b"", b"garbage\n{}", raw[:-1] + b" "):
        path.write_bytes(bad)
        with pytest.raises(CorruptRecordError):
            ResumeRecord.load(str(path))
    assert ResumeRecord.load(str(tmp_path / "absent")) is None


@given(st.binary(max_size=300))
def test_record_reader_never_crashes_on_garbage(blob):
    try:
        ResumeRecord.from_bytes(blob)
    except CorruptRecordError:
        pass


def test_retry_delay_grows_is_bounded_and_honours_retry_after():
    policy = RetryPolicy(base_delay=0.1, max_delay=2.0)
    rng = random.Random(0)
    delays = [policy.delay(a, rng=rng) for a in range(1, 12)]
    assert all(0 < d <= 2.0 for d in delays)
    assert delays[0] <= 0.1 and max(delays[5:]) > 0.5
    assert policy.delay(1, 3.0, rng=rng) >= 3.0
    assert policy.delay(1, 10_000, rng=rng) == policy.max_retry_after
    assert parse_retry_after("2") == 2.0 and parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None


def test_content_range_parsing():
    assert parse_content_range("bytes 0-9/100") == (0, 9, 100)
    assert parse_content_range("bytes 5-9/*") == (5, 9, None)
    for bad in (None, "bytes 0-9", "bytes a-9/100", "items 0-9/100", "bytes */100"):
        assert parse_content_range(bad) is None
