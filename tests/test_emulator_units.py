"""The emulator's pure parts: listing pages, HTTP rules, signatures (against the SDK's signer),
and the Python API's argument checks."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest
from multidict import CIMultiDict
from qcloud_cos import CosConfig
from qcloud_cos.cos_auth import CosS3Auth
from requests import Request

from cosfast.emulator import CosError, Emulator
from cosfast.emulator.auth import Credentials, KeyRing, SignedRequest, verify
from cosfast.emulator.listing import ListQuery, list_page, parse_list_query
from cosfast.emulator.requestlog import RequestRecord, peak_concurrency
from cosfast.emulator.rules import (
    RangeSpec,
    check_conditions,
    parse_range,
    resolve_range,
    traffic_limit,
)

KEYS = sorted(["a/1", "a/2", "a/b/3", "b", "c/1", "d"])


def page(**q):
    return list_page(KEYS, ListQuery(**q))


def test_listing_counts_prefixes_and_keys_together():
    first = page(delimiter="/", max_keys=2)
    assert (
        first.entries == (("prefix", "a/"), ("key", "b"))
        and first.truncated
        and first.next_marker == "b"
    )
    rest = page(delimiter="/", max_keys=2, marker="b")
    assert (
        rest.entries == (("prefix", "c/"), ("key", "d"))
        and not rest.truncated
        and rest.next_marker is None
    )


def test_listing_without_delimiter_still_gives_next_marker():
    got = page(max_keys=4)
    assert [e[1] for e in got.entries] == KEYS[:4] and got.next_marker == KEYS[3]


def test_listing_marker_inside_a_common_prefix_skips_it():
    assert page(delimiter="/", marker="a/1").entries[0] == ("key", "b")
    assert page(prefix="a/", delimiter="/").entries == (
        ("key", "a/1"),
        ("key", "a/2"),
        ("prefix", "a/b/"),
    )


def test_listing_max_keys_zero_is_empty_and_not_truncated():
    got = page(max_keys=0)
    assert got.entries == () and not got.truncated


@pytest.mark.parametrize(
    "query", [{"max-keys": "-1"}, {"max-keys": "ten"}, {"encoding-type": "base64"}]
)
def test_bad_listing_parameters_are_invalid_argument(query):
    with pytest.raises(CosError) as bad:
        parse_list_query(query)
    assert (bad.value.status, bad.value.code) == (400, "InvalidArgument")


def test_max_keys_is_capped_at_1000():
    assert parse_list_query({"max-keys": "5000"}).max_keys == 1000


@pytest.mark.parametrize(
    "header,size,expected",
    [
        ("bytes=0-0", 10, (0, 1)),
        ("bytes=-3", 10, (7, 10)),
        ("bytes=-30", 10, (0, 10)),
        ("bytes=4-", 10, (4, 10)),
    ],
)
def test_ranges_resolve(header, size, expected):
    assert resolve_range(parse_range(header), size) == expected


def test_range_forms():
    assert parse_range("bytes=1-2") == RangeSpec(1, 2)
    assert parse_range("bytes=-5") == RangeSpec(None, None, suffix=5)
    assert parse_range("bytes=-") is None and parse_range(None) is None


def test_conditions_in_rfc_order():
    etag, mtime = '"abc"', 1_000_000.0
    old, new = formatdate(mtime - 1, usegmt=True), formatdate(mtime, usegmt=True)
    assert check_conditions({"If-Match": "abc"}, etag, mtime) is None  # unquoted ETags match too
    assert check_conditions({"If-Match": '"x", "abc"'}, etag, mtime) is None
    assert check_conditions({"If-Match": '"x"'}, etag, mtime) == 412
    assert check_conditions({"If-None-Match": "*"}, etag, mtime) == 304
    assert check_conditions({"If-Modified-Since": new}, etag, mtime) == 304
    assert check_conditions({"If-Unmodified-Since": old}, etag, mtime) == 412
    assert check_conditions({"If-Unmodified-Since": new}, etag, mtime) is None
    assert check_conditions({"If-Modified-Since": old}, etag, mtime) is None
    assert check_conditions({"If-Modified-Since": "not a date"}, etag, mtime) is None


def test_traffic_limit_bounds_in_bits():
    assert traffic_limit({"x-cos-traffic-limit": "819200"}, {}) == 102400
    assert traffic_limit({}, {"x-cos-traffic-limit": "838860800"}) == 104857600
    assert traffic_limit({}, {}) is None


def sdk_signed(method, key, params, headers, secret_key="sk", expire=100):
    config = CosConfig(Region="ap-guangzhou", SecretId="id", SecretKey=secret_key)
    prepared = Request(method, "http://127.0.0.1/x", headers=headers, params=params).prepare()
    CosS3Auth(config, key, params=params, expire=expire)(prepared)
    return prepared


@pytest.mark.parametrize(
    "key,params,headers",
    [
        ("a b/中文+%.txt", {}, {"Host": "b-1.cos.ap-guangzhou.myqcloud.com"}),
        (
            "k",
            {"prefix": "x y", "marker": "", "max-keys": "10"},
            {"Host": "h", "x-cos-meta-A": "Ünï code"},
        ),
        (
            "k",
            {"response-content-type": "text/plain; charset=utf-8"},
            {"Range": "bytes=0-9", "If-Match": '"e"'},
        ),
    ],
)
def test_signatures_verify_what_the_sdk_signs(key, params, headers):
    keyring = KeyRing()
    keyring.add(Credentials("id", "sk"))
    prepared = sdk_signed("GET", key, params, headers)
    wire = CIMultiDict(prepared.headers)
    # Without a Host of its own the SDK signs the URL's host name; the wire adds the port.
    wire.setdefault("Host", "127.0.0.1:8080")
    request = SignedRequest("GET", "/" + key, list(params.items()), wire)
    assert verify(request, keyring).secret_id == "id"
    tampered = SignedRequest("GET", "/" + key + "x", list(params.items()), wire)
    with pytest.raises(CosError, match="SignatureDoesNotMatch"):
        verify(tampered, keyring)
    with pytest.raises(CosError, match="expired"):
        verify(request, keyring, now=time.time() + 1000)


def test_python_api_checks_its_arguments(tmp_path):
    emu = Emulator(tmp_path)  # not started: the seeding API works on the storage alone
    with pytest.raises(ValueError, match="examplebucket-1250000000"):
        emu.create_bucket("Bad_Name")
    bucket = emu.create_bucket("ok-1250000000")
    with pytest.raises(TypeError, match="exactly one"):
        emu.put_object(bucket, "k", b"x", path=tmp_path / "f")
    with pytest.raises(TypeError, match="bytes-like"):
        emu.put_object(bucket, "k", "text")
    with pytest.raises(ValueError, match="header"):
        emu.put_object(bucket, "k", b"x", headers={"X-Unknown": "1"})
    with pytest.raises(CosError, match="NoSuchBucket"):
        emu.put_object("missing-1250000000", "k", b"x")
    info = emu.put_object(bucket, "k", b"x", metadata={"Owner": "me"})
    assert info.metadata == {"x-cos-meta-owner": "me"} and info.size == 1
    emu.delete_object(bucket, "k")
    with pytest.raises(CosError, match="NoSuchKey"):
        emu.head_object(bucket, "k")
    # Nothing left behind by the refused puts or the delete.
    assert [p for p in (tmp_path / bucket / "data").rglob("*") if p.is_file()] == []


def test_peak_concurrency_counts_overlaps():
    def rec(started, ended):
        return RequestRecord("GET", "/", None, None, {}, None, 1, started, ended=ended)

    assert peak_concurrency([]) == 0
    assert peak_concurrency([rec(0, 1), rec(1, 2), rec(2, 3)]) == 1  # back to back
    assert peak_concurrency([rec(0, 10), rec(1, 2), rec(1.5, None), rec(3, 4)]) == 3
