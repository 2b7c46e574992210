"""Every fault kind, seen from a raw HTTP client (http.client and pycurl)."""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import threading
import time
import urllib.request

import pycurl
import pytest
from emulator_helpers import raw_request, sdk, signed_headers
from qcloud_cos.cos_exception import CosServiceError

from cosfast.emulator import Fault
from cosfast.emulator.pytest_plugin import unique_bucket_name

pytestmark = pytest.mark.timeout(60)


def open_get(server, key, headers=None, timeout=10.0):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    conn.request(
        "GET", "/" + key, headers=signed_headers(server, "GET", server.bucket, key, headers)
    )
    return conn, conn.getresponse()


def public_bucket(server) -> str:
    """A public-read bucket, so that raw anonymous requests reach GET Bucket (the SDK helper
    cannot sign a request without a key)."""
    return server.create_bucket(unique_bucket_name(), public_read=True)


def list_raw(server, bucket, query=""):
    """GET Bucket (List Objects), anonymous, over a fresh http.client connection."""
    return raw_request(server, "GET", bucket, "", query=query, sign=False)


def curl_get(server, key, headers=None):
    """(curl error code or 0, HTTP status, body bytes received)."""
    buf = io.BytesIO()
    c = pycurl.Curl()
    c.setopt(pycurl.URL, f"{server.endpoint}/{key}")
    all_headers = signed_headers(server, "GET", server.bucket, key, headers)
    c.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" for k, v in all_headers.items()])
    c.setopt(pycurl.WRITEDATA, buf)
    c.setopt(pycurl.TIMEOUT, 20)
    try:
        c.perform()
        code = 0
    except pycurl.error as exc:
        code = exc.args[0]
    status = c.getinfo(pycurl.RESPONSE_CODE)
    c.close()
    return code, status, buf.getvalue()


def test_status_fault_fires_on_the_nth_match_for_times(emulator):
    emulator.put("k", b"payload")
    fid = emulator.add_fault(
        Fault(kind="status", key="k", method="GET", status=503, retry_after=3, nth=2, times=2)
    )
    statuses = [raw_request(emulator, "GET", emulator.bucket, "k") for _ in range(4)]
    assert [r.status for r in statuses] == [200, 503, 503, 200]
    slow_down = statuses[1]
    assert slow_down.headers["Retry-After"] == "3"
    assert b"<Code>SlowDown</Code>" in slow_down.body
    assert raw_request(emulator, "HEAD", emulator.bucket, "k").status == 200  # method=GET only
    assert emulator.fault_fired(fid) == 2
    emulator.add_fault(Fault(kind="status", key="k", status=500))
    internal = raw_request(emulator, "GET", emulator.bucket, "k")
    assert internal.status == 500 and b"<Code>InternalError</Code>" in internal.body
    assert [r.faults for r in emulator.request_log] == [
        [],
        ["status"],
        ["status"],
        [],
        [],
        ["status"],
    ]


def test_drop_closes_after_exactly_n_body_bytes(emulator):
    data = os.urandom(200_000)
    emulator.put("d", data)
    emulator.add_fault(Fault(kind="drop", key="d", after_bytes=70_000))
    code, status, body = curl_get(emulator, "d")
    assert (code, status) == (pycurl.E_PARTIAL_FILE, 200)
    assert body == data[:70_000]
    record = emulator.request_log[-1]
    assert record.dropped and record.bytes_sent == 70_000
    # times=1: the next request is whole again.
    assert curl_get(emulator, "d") == (0, 200, data)


def test_drop_before_the_first_byte_of_a_ranged_get(emulator):
    data = os.urandom(10_000)
    emulator.put("d0", data)
    emulator.add_fault(Fault(kind="drop", key="d0", range_start=5000, after_bytes=0))
    assert (
        curl_get(emulator, "d0", {"Range": "bytes=0-4999"})[2] == data[:5000]
    )  # other start: no fault
    code, status, body = curl_get(emulator, "d0", {"Range": "bytes=5000-"})
    assert code == pycurl.E_PARTIAL_FILE and status == 206 and body == b""


def test_stall_sends_nothing_then_resumes(emulator):
    data = os.urandom(100_000)
    emulator.put("s", data)
    emulator.add_fault(Fault(kind="stall", key="s", after_bytes=40_000, seconds=1.0, times=2))
    conn, resp = open_get(emulator, "s", timeout=0.3)
    assert resp.read(40_000) == data[:40_000]
    with pytest.raises(socket.timeout):
        resp.read(1)
    conn.close()
    conn, resp = open_get(emulator, "s", timeout=10)
    started = time.monotonic()
    assert resp.read() == data
    assert time.monotonic() - started >= 0.9  # the stall happened (lower bound only)
    conn.close()


def test_slow_paces_to_the_rate(emulator):
    data = os.urandom(60_000)
    emulator.put("slow", data)
    emulator.add_fault(Fault(kind="slow", key="slow", rate=100_000))
    started = time.monotonic()
    got = raw_request(emulator, "GET", emulator.bucket, "slow")
    assert got.body == data
    assert time.monotonic() - started >= 0.6 - 0.05


def test_flip_changes_one_byte_only_where_asked(emulator):
    data = os.urandom(100_000)
    info = emulator.put("f", data)
    fid = emulator.add_fault(Fault(kind="flip", key="f", offset=54_321, times=None))
    untouched = raw_request(emulator, "GET", emulator.bucket, "f", {"Range": "bytes=0-49999"})
    assert untouched.body == data[:50_000] and emulator.fault_fired(fid) == 0
    ranged = raw_request(emulator, "GET", emulator.bucket, "f", {"Range": "bytes=50000-59999"})
    expected = bytearray(data[50_000:60_000])
    expected[4321] ^= 0xFF
    assert ranged.body == bytes(expected)
    whole = raw_request(emulator, "GET", emulator.bucket, "f")
    diffs = [i for i in range(len(data)) if whole.body[i] != data[i]]
    assert diffs == [54_321]
    # The headers still describe the stored object: only a client's own CRC can catch it.
    assert whole.headers["x-cos-hash-crc64ecma"] == str(info.crc64)
    assert emulator.fault_fired(fid) == 2


def test_full200_answers_a_ranged_get_with_the_whole_body(emulator):
    data = os.urandom(30_000)
    emulator.put("w", data)
    emulator.add_fault(Fault(kind="full200", key="w"))
    unranged = raw_request(emulator, "GET", emulator.bucket, "w")
    assert unranged.status == 200  # not ranged: the fault neither matches nor is used up
    got = raw_request(emulator, "GET", emulator.bucket, "w", {"Range": "bytes=100-199"})
    assert got.status == 200 and got.body == data and "Content-Range" not in got.headers
    again = raw_request(emulator, "GET", emulator.bucket, "w", {"Range": "bytes=100-199"})
    assert again.status == 206 and again.body == data[100:200]


def test_replace_changes_the_object_before_the_nth_request(emulator):
    data = os.urandom(20_000)
    old = emulator.put("v", data, content_type="text/plain", metadata={"m": "1"})
    emulator.add_fault(Fault(kind="replace", key="v", method="GET", nth=2))
    first = raw_request(
        emulator, "GET", emulator.bucket, "v", {"If-Match": old.etag, "Range": "bytes=0-9"}
    )
    assert first.status == 206 and first.body == data[:10]
    second = raw_request(
        emulator, "GET", emulator.bucket, "v", {"If-Match": old.etag, "Range": "bytes=10-19"}
    )
    assert second.status == 412 and b"PreconditionFailed" in second.body
    new = emulator.head_object(emulator.bucket, "v")
    assert new.etag != old.etag and new.size == old.size
    assert new.content_type == "text/plain" and new.metadata == {"x-cos-meta-m": "1"}
    third = raw_request(emulator, "GET", emulator.bucket, "v")
    assert third.body == bytes(255 - b for b in data) and third.headers["ETag"] == new.etag


def test_replace_with_given_bytes_and_from_python(emulator):
    old = emulator.put("x", b"old bytes")
    emulator.add_fault(Fault(kind="replace", key="x", new_data=b"brand new"))
    got = raw_request(emulator, "GET", emulator.bucket, "x")
    assert got.body == b"brand new" and got.headers["ETag"] != old.etag
    replaced = emulator.replace_object(emulator.bucket, "x")
    assert replaced.etag != got.headers["ETag"]
    assert raw_request(emulator, "GET", emulator.bucket, "x").body == bytes(
        255 - b for b in b"brand new"
    )


def test_redirect_points_elsewhere(emulator):
    emulator.put("r", b"here")
    emulator.add_fault(Fault(kind="redirect", key="r", location="http://127.0.0.2:9/elsewhere"))
    moved = raw_request(emulator, "GET", emulator.bucket, "r")
    assert moved.status == 302 and moved.headers["Location"] == "http://127.0.0.2:9/elsewhere"
    assert moved.headers["x-cos-request-id"]
    assert raw_request(emulator, "GET", emulator.bucket, "r").body == b"here"


def test_faults_match_by_key_and_bucket_and_are_cleared(emulator):
    emulator.put("a", b"a")
    emulator.put("b", b"b")
    emulator.add_fault(Fault(kind="status", key="a", bucket=emulator.bucket, times=None))
    emulator.add_fault(Fault(kind="status", key="b", bucket="other-1250000000", times=None))
    assert raw_request(emulator, "GET", emulator.bucket, "a").status == 503
    assert raw_request(emulator, "GET", emulator.bucket, "b").status == 200
    emulator.clear_faults()
    assert raw_request(emulator, "GET", emulator.bucket, "a").status == 200


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "nope"},
        {"kind": "slow"},
        {"kind": "drop", "method": "HEAD"},
        {"kind": "status", "status": 200},
        {"kind": "redirect"},
        {"kind": "redirect", "location": "http://x/", "status": 500},
        {"kind": "status", "nth": 0},
        {"kind": "status", "times": 0},
        {"kind": "delay", "seconds": -1},
        {"kind": "status", "scope": "bucket"},
        {"kind": "status", "marker": ""},  # a marker needs scope="listing"
        {"kind": "replace", "scope": "listing"},
        {"kind": "drop", "scope": "listing"},
        {"kind": "stall", "scope": "listing"},
        {"kind": "status", "scope": "listing", "key": "k"},
        {"kind": "status", "scope": "listing", "ranged": True},
        {"kind": "delay", "scope": "listing", "method": "HEAD"},
    ],
)
def test_bad_faults_are_refused(bad):
    with pytest.raises(ValueError):
        Fault(**bad)


def test_an_object_only_kind_for_a_listing_is_refused_by_name():
    with pytest.raises(ValueError, match="a 'flip' fault acts on objects; scope='listing' takes"):
        Fault(kind="flip", scope="listing")


# -- faults for listings (GET Bucket) -------------------------------------------------------------


def test_a_listing_fault_fires_on_listings_only(emulator):
    bucket = public_bucket(emulator)
    emulator.put_object(bucket, "k", b"payload")
    fid = emulator.add_fault(
        Fault(kind="status", scope="listing", bucket=bucket, retry_after=2, nth=2, times=2)
    )
    assert raw_request(emulator, "GET", bucket, "k", sign=False).status == 200
    assert list_raw(emulator, bucket).status == 200  # nth=2: the first listing is served
    refused = list_raw(emulator, bucket)
    assert refused.status == 503 and refused.headers["Retry-After"] == "2"
    assert b"<Code>SlowDown</Code>" in refused.body
    assert raw_request(emulator, "GET", bucket, "k", sign=False).status == 200
    assert raw_request(emulator, "HEAD", bucket, "k", sign=False).status == 200
    assert list_raw(emulator, bucket).status == 503
    assert b"<Key>k</Key>" in list_raw(emulator, bucket).body  # times=2: served again
    assert emulator.fault_fired(fid) == 2
    assert [(r.method, r.key, r.status, r.faults) for r in emulator.request_log] == [
        ("GET", "k", 200, []),
        ("GET", None, 200, []),
        ("GET", None, 503, ["status"]),
        ("GET", "k", 200, []),
        ("HEAD", "k", 200, []),
        ("GET", None, 503, ["status"]),
        ("GET", None, 200, []),
    ]


def test_an_object_fault_for_any_key_never_fires_on_a_listing(emulator):
    bucket = public_bucket(emulator)
    emulator.put_object(bucket, "k", b"payload")
    status = emulator.add_fault(Fault(kind="status", status=500, times=None))
    delay = emulator.add_fault(Fault(kind="delay", bucket=bucket, seconds=30, times=None))
    assert list_raw(emulator, bucket).status == 200  # within raw_request's 10 s timeout
    assert emulator.fault_fired(status) == emulator.fault_fired(delay) == 0
    emulator.remove_fault(delay)
    assert raw_request(emulator, "GET", bucket, "k", sign=False).status == 500
    assert [r.faults for r in emulator.request_log] == [[], ["status"]]


def test_delay_holds_the_answer_without_holding_the_server(emulator):
    bucket = public_bucket(emulator)
    emulator.put_object(bucket, "k", b"payload")
    fid = emulator.add_fault(Fault(kind="delay", scope="listing", seconds=1.5))
    listed = {}

    def list_slowly():
        started = time.monotonic()
        listed["response"] = list_raw(emulator, bucket)
        listed["seconds"] = time.monotonic() - started

    lister = threading.Thread(target=list_slowly)
    lister.start()
    while not emulator.fault_fired(fid):  # the listing has reached the server and waits
        time.sleep(0.01)
    assert raw_request(emulator, "GET", bucket, "k", sign=False).body == b"payload"
    lister.join()
    assert listed["seconds"] >= 1.5 - 0.05
    assert listed["response"].status == 200 and b"<Key>k</Key>" in listed["response"].body
    listing, get = emulator.request_log
    assert (listing.faults, get.faults) == (["delay"], [])
    assert get.ended < listing.ended  # served while the listing waited: the loop was free
    emulator.add_fault(Fault(kind="delay", key="k", seconds=0.5))  # an object's delay
    started = time.monotonic()
    assert raw_request(emulator, "GET", bucket, "k", sign=False).body == b"payload"
    assert time.monotonic() - started >= 0.5 - 0.05


def test_listing_faults_match_by_marker(emulator):
    bucket = public_bucket(emulator)
    for key in ("a", "b", "c"):
        emulator.put_object(bucket, key, b"x")
    emulator.add_fault(Fault(kind="status", scope="listing", marker="b", status=500, times=None))
    emulator.add_fault(
        Fault(kind="redirect", scope="listing", marker="", location="http://127.0.0.2:9/")
    )
    first = list_raw(emulator, bucket, "max-keys=1")
    assert first.status == 302 and first.headers["Location"] == "http://127.0.0.2:9/"
    assert b"<NextMarker>a</NextMarker>" in list_raw(emulator, bucket, "max-keys=1").body
    assert list_raw(emulator, bucket, "marker=a&max-keys=1").status == 200
    second = list_raw(emulator, bucket, "marker=b&max-keys=1")
    assert second.status == 500 and b"<Code>InternalError</Code>" in second.body
    assert list_raw(emulator, bucket, "marker=b&max-keys=1").status == 500  # times=None
    assert b"<Key>c</Key>" not in list_raw(emulator, bucket, "max-keys=1").body


def test_listing_faults_round_trip_as_json_and_through_the_admin_endpoint(make_emulator):
    fault = Fault(kind="delay", scope="listing", bucket="a-1250000000", marker="", seconds=0.25)
    assert Fault.from_json(json.loads(json.dumps(fault.to_json()))) == fault
    server = make_emulator(admin=True)
    bucket = server.create_bucket("adm-1250000000")
    request = urllib.request.Request(
        f"{server.endpoint}/-/emulator/faults",
        data=json.dumps({"kind": "status", "scope": "listing", "marker": "m"}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        fid = json.loads(resp.read())["id"]
    with urllib.request.urlopen(f"{server.endpoint}/-/emulator/faults", timeout=10) as resp:
        (listed,) = json.loads(resp.read())
    added = Fault.from_json(listed["fault"])
    assert (added.scope, added.marker, added.status) == ("listing", "m", 503)
    client = sdk(server)
    client.list_objects(Bucket=bucket)  # another marker: served
    assert server.fault_fired(fid) == 0
    with pytest.raises(CosServiceError):
        client.list_objects(Bucket=bucket, Marker="m")
    assert server.fault_fired(fid) == 1


def test_a_client_leaving_mid_body_is_logged_not_fatal(emulator):
    data = os.urandom(4 * 1024 * 1024)
    emulator.put("big", data)
    emulator.add_fault(Fault(kind="slow", key="big", rate=1_000_000))
    sock = socket.create_connection((emulator.host, emulator.port), timeout=10)
    headers = signed_headers(emulator, "GET", emulator.bucket, "big")
    request = (
        "GET /big HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    )
    sock.sendall(request.encode())
    assert sock.recv(100).startswith(b"HTTP/1.1 200")
    sock.close()
    assert raw_request(emulator, "GET", emulator.bucket, "big").body == data  # still serving
    gone, served = emulator.request_log
    assert gone.error_code == "ClientClosed" and gone.ended is not None
    assert 0 < gone.bytes_sent < len(data)
    assert served.status == 200 and served.bytes_sent == len(data)


@pytest.mark.timeout(15)
def test_close_does_not_wait_out_a_stall(make_emulator):
    server = make_emulator(auth=False)
    bucket = server.create_bucket("stall-1250000000")
    server.put_object(bucket, "k", os.urandom(100_000))
    server.add_fault(Fault(kind="stall", key="k", after_bytes=10, seconds=600))
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    conn.request("GET", f"/{bucket}/k")
    resp = conn.getresponse()
    assert resp.read(10) and resp.status == 200
    server.close()  # a hang here fails the test by its timeout
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    (record,) = server.request_log
    assert record.error_code == "Cancelled" and record.ended is not None
    conn.close()
