"""Fuzzing the resume-record reader: any file content reads as a record or raises
CorruptRecordError (which download_file answers by starting over), including content sealed
with a correct digest, as an edited or foreign file could be."""
from __future__ import annotations

import json

import pytest
import xxhash
from fuzz_strategies import FUZZ, json_values
from hypothesis import given
from hypothesis import strategies as st

from cosfast.transfer.record import MAGIC, CorruptRecordError, ObjectIdentity, ResumeRecord


def sealed(body: bytes) -> bytes:
    return f"{MAGIC} 1 {xxhash.xxh3_64_hexdigest(body)}\n".encode() + body


def read(raw: bytes):
    try:
        return ResumeRecord.from_bytes(raw)
    except CorruptRecordError:
        return None


VALID = {
    "identity": {"bucket": "b-1250000000", "key": "k", "version_id": None, "etag": '"e"', "size": 3 << 20,
                 "last_modified": None, "crc64": "1"},
    "part_size": 1 << 20,
    "temp_path": "/tmp/.o.cosfast.tmp",
    "parts": [[0, 1 << 20, 5], [2, 1 << 20, 7]],
}

identities = st.builds(ObjectIdentity, bucket=st.text(max_size=20), key=st.text(max_size=50),
                       version_id=st.none() | st.text(max_size=10), etag=st.text(min_size=1, max_size=40),
                       size=st.integers(0, 2**63), last_modified=st.none() | st.text(max_size=30),
                       crc64=st.none() | st.integers(0, 2**64 - 1).map(str))
records = st.builds(ResumeRecord, identity=identities, part_size=st.integers(1, 2**40),
                    temp_path=st.text(min_size=1, max_size=60),
                    parts=st.dictionaries(st.integers(0, 10000),
                                          st.tuples(st.integers(1, 2**40), st.integers(0, 2**64 - 1)),
                                          max_size=20))


@FUZZ
@given(records)
def test_a_record_reads_back_as_written(record):
    assert ResumeRecord.from_bytes(record.to_bytes()) == record


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes_are_a_record_or_corrupt(raw):
    read(raw)


@FUZZ
@given(records, st.data())
def test_a_torn_or_flipped_record_is_detected(record, data):
    raw = record.to_bytes()
    at = data.draw(st.integers(0, len(raw) - 1))
    if data.draw(st.booleans()):
        damaged = raw[:at]  # torn
    else:
        damaged = raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1:]
    assert read(damaged) is None


@FUZZ
@given(json_values)
def test_sealed_json_of_any_shape_is_a_record_or_corrupt(value):
    read(sealed(json.dumps(value).encode()))


@FUZZ
@given(st.sampled_from(sorted(VALID)), st.sampled_from(["identity", "parts", None]), json_values, st.data())
def test_a_sealed_record_with_one_odd_field_is_a_record_or_corrupt(field, inner, value, data):
    doc = json.loads(json.dumps(VALID))
    if inner == "identity" and field == "identity":
        doc["identity"][data.draw(st.sampled_from(sorted(VALID["identity"])))] = value
    elif inner == "parts" and field == "parts":
        doc["parts"].append(value)
    else:
        doc[field] = value
    record = read(sealed(json.dumps(doc).encode()))
    if record is not None:
        assert record.part_size > 0
        assert all(length > 0 and crc >= 0 for length, crc in record.parts.values())


@pytest.mark.parametrize("body", [
    (b'{"identity":{"bucket":"b","key":"k","version_id":null,"etag":"e","size":1,"last_modified":null,'
    b'"crc64":null},"part_size":1e400,"temp_path":"t","parts":[]}'),
    b"[" * 100_000 + b"]" * 100_000,
])
def test_infinite_numbers_and_deep_nesting_are_corrupt_records(body):
    # Found by fuzzing: OverflowError (int of infinity) and RecursionError escaped the reader.
    with pytest.raises(CorruptRecordError):
        ResumeRecord.from_bytes(sealed(body))
