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


def _pages(count: int, per_page: int):
    """A listing of count pages as list_page(marker) serves them, and every key in order."""
    from cosfast.transfer.batch import ListedObject, ListingPage
    keys = [f"k/{i:05d}" for i in range(count * per_page)]
    pages = {}
    for number in range(count):
        chunk = keys[number * per_page:(number + 1) * per_page]
        marker = "" if number == 0 else keys[number * per_page - 1]
        more = number + 1 < count
        pages[marker] = ListingPage([ListedObject(k, 1, '"e"', "") for k in chunk], chunk[-1] if more else None)
    return pages, keys


def _drain(source) -> list:
    from cosfast.transfer.batch import END
    out = []
    while (item := source(True)) is not END:
        out.append(item[0].key)
    return out


def test_lister_hands_out_the_first_page_before_its_thread_starts_and_then_every_page(tmp_path):
    from cosfast.transfer.batch import BatchOptions, Lister, Reporter, Selector, listed_source
    pages, keys = _pages(5, 3)
    asked = []

    def list_page(marker):
        asked.append(marker)
        return pages[marker]

    lister = Lister(list_page, 2, pages[""])
    source = listed_source(lister, Selector("k/", str(tmp_path), BatchOptions(), Reporter(BatchOptions())))
    assert [source(False)[0].key for _ in range(3)] == keys[:3]  # no thread yet, nothing listed
    assert source(False) is None and asked == []
    lister.start()
    assert _drain(source) == keys[3:]
    lister.join(5)
    assert asked == [keys[2], keys[5], keys[8], keys[11]] and lister.error is None


def test_lister_of_one_page_ends_without_listing_and_a_failed_page_ends_it_with_the_error(tmp_path):
    from cosfast.transfer.batch import BatchOptions, Lister, Reporter, Selector, listed_source
    pages, keys = _pages(1, 4)
    lister = Lister(lambda marker: pytest.fail("listed again"), 4, pages[""])
    selector = Selector("k/", str(tmp_path), BatchOptions(), Reporter(BatchOptions()))
    assert _drain(listed_source(lister, selector)) == keys  # END queued with the only page
    lister.start()
    lister.join(5)
    assert lister.error is None

    pages, keys = _pages(3, 2)

    def failing(marker):
        raise OSError("listing refused")

    lister = Lister(failing, 4, pages[""])
    lister.start()
    assert _drain(listed_source(lister, Selector("k/", str(tmp_path / "b"), BatchOptions(),
                                                 Reporter(BatchOptions())))) == keys[:2]
    lister.join(5)
    assert isinstance(lister.error, OSError) and "listing refused" in str(lister.error)
