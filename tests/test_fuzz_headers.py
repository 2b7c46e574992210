"""Fuzzing response-head handling: status lines and headers as libcurl hands them over
(HeaderParser, shared by the facade and the engine), Content-Range, Content-Length, Retry-After, the
HEAD that pins a download (Content-Length, ETag, Last-Modified, CRC header), the check that a
ranged answer is exactly the bytes asked, and the CRC-64 comparison. Only the documented
outcomes: values or None, CosClientError, CrcMismatchError, ProtocolViolationError."""
from __future__ import annotations

import math

import pytest
from fuzz_strategies import FUZZ, header_values
from hypothesis import assume, given
from hypothesis import strategies as st

from cosfast import partwriter
from cosfast.cos_exception import CosClientError
from cosfast.crc64 import crc64
from cosfast.download_file import identity_from_head
from cosfast.transfer.destination import CrcMismatchError
from cosfast.transfer.download import _verify_crc
from cosfast.transfer.attempt import Attempt
from cosfast.transfer.engine import RangeJob
from cosfast.transfer.errors import ProtocolViolationError
from cosfast.transfer.plan import Part
from cosfast.transfer.record import ObjectIdentity
from cosfast.transfer.response import HeaderParser, parse_content_range, parse_decimal
from cosfast.transfer.retry import parse_retry_after

HEADER_NAMES = ["Content-Length", "Content-Range", "ETag", "Last-Modified", "x-cos-hash-crc64ecma",
                "x-cos-version-id", "Retry-After", "Content-Type"]
# A digit-like character that str.isdigit() accepts and int() refuses; 0xB2 in ISO-8859-1.
SUPERSCRIPT_TWO = "\u00b2"

numbers = st.integers(0, 2**64).map(str)
header_lines = st.one_of(
    st.binary(max_size=60),
    st.builds(lambda v: b"HTTP/1.1 " + v.encode("latin-1") + b" OK\r\n", header_values | numbers),
    st.builds(lambda n, v: f"{n}: {v}\r\n".encode("latin-1"), st.sampled_from(HEADER_NAMES),
              header_values | numbers),
    st.just(b"\r\n"),
)


@FUZZ
@given(st.lists(header_lines, max_size=12))
def test_header_parser_takes_any_lines(lines):
    parser = HeaderParser()
    for line in lines:
        parser.feed(line)
        assert isinstance(parser.status, int) and parser.status >= 0
    assert all(isinstance(v, str) for v in parser.headers.values())


@pytest.mark.parametrize("line", [f"HTTP/1.1 {SUPERSCRIPT_TWO}00 OK\r\n", "HTTP/1.1 \u0662\u0660\u0660 OK\r\n"])
def test_a_status_of_non_ascii_digits_is_no_status(line):
    # Found by fuzzing: str.isdigit() accepted "²00" and int() raised ValueError.
    parser = HeaderParser()
    parser.feed(line.encode("latin-1", "replace"))
    assert parser.status == 0


@FUZZ
@given(header_values | st.none())
def test_parse_decimal_accepts_ascii_digits_only(value):
    number = parse_decimal(value)
    if number is None:
        assert value is None or not (value.strip().isascii() and value.strip().isdigit())
    else:
        assert number == int(value) and number >= 0


@FUZZ
@given(st.one_of(header_values, st.builds(lambda a, b, c: f"bytes {a}-{b}/{c}", numbers, numbers,
                                          numbers | st.just("*"))))
def test_content_range_is_parsed_or_refused(value):
    parsed = parse_content_range(value)
    if parsed is not None:
        assert value.isascii()
        numbers_sent = value.strip()[len("bytes "):].replace("/", "-").split("-")
        assert [int(n) for n in numbers_sent if n != "*"] == [n for n in parsed if n is not None]


def test_content_range_of_non_ascii_digits_is_refused():
    # Found by fuzzing: the \d in the pattern matched any Unicode digit.
    assert parse_content_range("bytes \u0660-\u0663/\u0664") is None


@FUZZ
@given(header_values | st.none())
def test_retry_after_is_a_finite_non_negative_delay_or_none(value):
    delay = parse_retry_after(value)
    assert delay is None or (delay >= 0 and not math.isnan(delay))


@FUZZ
@given(st.dictionaries(st.sampled_from(HEADER_NAMES + ["content-length", "etag"]), header_values | numbers,
                       max_size=6), st.none() | st.text(max_size=8))
def test_the_pinning_head_gives_an_identity_or_a_client_error(headers, version_id):
    try:
        identity = identity_from_head("b-1250000000", "k", version_id, headers)
    except CosClientError as exc:
        assert "k" in str(exc)
        return
    assert isinstance(identity.size, int) and identity.size >= 0 and identity.etag


def test_a_content_length_of_non_ascii_digits_is_a_client_error():
    # Found by fuzzing: "²" passed str.isdigit() and int() raised ValueError out of download_file.
    with pytest.raises(CosClientError, match="Content-Length"):
        identity_from_head("b-1250000000", "k", None, {"Content-Length": SUPERSCRIPT_TWO, "ETag": '"e"'})


@pytest.fixture(scope="module")
def temp_file(tmp_path_factory):
    with partwriter.TempFile(str(tmp_path_factory.mktemp("fuzz") / "t"), 1000, create=True) as temp:
        yield temp


@FUZZ
@given(st.integers(0, 2), st.sampled_from([200, 206, 416, 500, 0]),
       st.dictionaries(st.sampled_from(["Content-Length", "Content-Range"]),
                       header_values | numbers | st.builds(lambda a, b, c: f"bytes {a}-{b}/{c}",
                                                           st.integers(0, 1100), st.integers(0, 1100),
                                                           st.sampled_from(["1000", "999", "*"])),
                       max_size=2))
def test_a_body_is_accepted_only_if_it_is_exactly_the_range_asked(temp_file, part, status, headers):
    offset, length = (0, 1000) if part == 0 else (part * 400 - 400, 400 if part == 1 else 600)
    sink = partwriter.PartSink(temp_file, offset, length)
    job = RangeJob(part=Part(part, offset, length), object_size=1000, sink=sink,
                   build_request=lambda extra: ("", []), owner=None, whole_object=part == 0)
    attempt = Attempt(job, job.range_header())
    lines = [f"HTTP/1.1 {status} X\r\n".encode()] + [f"{k}: {v}\r\n".encode("latin-1") for k, v in headers.items()]
    for line in lines + [b"\r\n"]:
        assert attempt.on_header(line) is None
    attempt.read_head()
    if attempt.accept_body:
        if attempt.range_asked is None:
            assert status == 200 and parse_decimal(headers.get("Content-Length")) == 1000
        else:
            assert status == 206 and headers["Content-Range"] == f"bytes {offset}-{offset + length - 1}/1000"
            assert parse_decimal(headers.get("Content-Length", str(length))) == length
    if attempt.violation is not None:
        assert isinstance(attempt.violation, ProtocolViolationError) and status in (200, 206)


def _identity(crc: str | None) -> ObjectIdentity:
    return ObjectIdentity(bucket="b", key="k", version_id=None, etag='"e"', size=9, last_modified=None, crc64=crc)


@FUZZ
@given(header_values | st.none() | st.just(str(crc64(b"123456789"))), st.booleans())
def test_the_crc_header_matches_or_is_a_mismatch_error(value, enable_crc):
    assume(value is not None or not enable_crc)  # the no-header warning is tested elsewhere
    parts = [Part(0, 0, 9)]
    try:
        _verify_crc(_identity(value), value, parts, {0: (9, crc64(b"123456789"))}, enable_crc, "dest")
    except CrcMismatchError:
        assert value.strip() != str(crc64(b"123456789"))
        return
    assert value is None or value.strip() == str(crc64(b"123456789"))
