"""The emulator at the HTTP level: COS's headers, ranges, traffic limit, addressing, the log,
the admin endpoint and the command line."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from emulator_helpers import raw_request, sdk, signed_headers
from qcloud_cos.cos_exception import CosServiceError

import cosfast
from cosfast.crc64 import crc64
from cosfast.emulator import CosError, Emulator

pytestmark = pytest.mark.timeout(60)


def test_cos_headers_on_success_and_error(emulator):
    data = os.urandom(5000)
    emulator.put("h", data)
    ok = raw_request(emulator, "GET", emulator.bucket, "h", {"Range": "bytes=100-199"})
    assert ok.status == 206
    assert ok.headers["Server"] == "tencent-cos"
    assert ok.headers["Accept-Ranges"] == "bytes"
    assert ok.headers["Content-Range"] == "bytes 100-199/5000"
    assert ok.headers["x-cos-hash-crc64ecma"] == str(crc64(data))
    assert re.fullmatch(r"[A-Za-z0-9+/=]{16,}", ok.headers["x-cos-request-id"])
    assert ok.body == data[100:200]
    missing = raw_request(emulator, "GET", emulator.bucket, "absent")
    assert missing.status == 404
    assert missing.headers["Server"] == "tencent-cos"
    assert missing.headers["Content-Type"].startswith("application/xml")
    assert missing.headers["x-cos-trace-id"]
    assert f"<RequestId>{missing.headers['x-cos-request-id']}</RequestId>".encode() in missing.body
    assert b"<Code>NoSuchKey</Code>" in missing.body
    head_missing = raw_request(emulator, "HEAD", emulator.bucket, "absent")
    assert head_missing.status == 404 and head_missing.body == b""
    assert head_missing.headers["x-cos-request-id"]


@pytest.mark.parametrize(
    "size,range_header",
    [
        (1000, "bytes=1000-"),
        (1000, "bytes=5000-6000"),
        (1000, "bytes=-0"),
        (0, "bytes=0-0"),
        (0, "bytes=-5"),
    ],
)
def test_unsatisfiable_range_is_416_with_the_size(emulator, size, range_header):
    emulator.put("r", os.urandom(size))
    got = raw_request(emulator, "GET", emulator.bucket, "r", {"Range": range_header})
    assert got.status == 416
    assert got.headers["Content-Range"] == f"bytes */{size}"
    assert b"<Code>InvalidRange</Code>" in got.body


@pytest.mark.parametrize("range_header", ["bytes=5-2", "bytes=0-1,4-5", "items=0-1", "bytes=x-"])
def test_unparseable_or_multiple_ranges_get_the_whole_object(emulator, range_header):
    data = os.urandom(64)
    emulator.put("r", data)
    got = raw_request(emulator, "GET", emulator.bucket, "r", {"Range": range_header})
    assert got.status == 200 and got.body == data and "Content-Range" not in got.headers


def test_range_past_the_end_is_clamped(emulator):
    data = os.urandom(100)
    emulator.put("r", data)
    got = raw_request(emulator, "GET", emulator.bucket, "r", {"Range": "bytes=90-1000"})
    assert got.status == 206 and got.body == data[90:]
    assert got.headers["Content-Range"] == "bytes 90-99/100"


def test_object_without_crc_has_no_crc_header(emulator):
    emulator.put("old", b"from before crc64", with_crc=False)
    got = raw_request(emulator, "GET", emulator.bucket, "old")
    assert got.status == 200 and "x-cos-hash-crc64ecma" not in got.headers
    assert emulator.head_object(emulator.bucket, "old").crc64 is None


@pytest.mark.parametrize("value", ["819199", "838860801", "fast", "-1"])
def test_traffic_limit_out_of_range_is_invalid_argument(emulator, value):
    emulator.put("t", b"x" * 10)
    header = raw_request(emulator, "GET", emulator.bucket, "t", {"x-cos-traffic-limit": value})
    assert header.status == 400 and b"<Code>InvalidArgument</Code>" in header.body
    query = raw_request(emulator, "GET", emulator.bucket, "t", query=f"x-cos-traffic-limit={value}")
    assert query.status == 400 and b"<Code>InvalidArgument</Code>" in query.body


def test_traffic_limit_paces_the_body(emulator):
    size = 120 * 1024
    data = os.urandom(size)
    emulator.put("paced", data)
    rate_bits = 819200  # the floor: 100 KiB/s
    started = time.monotonic()
    got = raw_request(
        emulator, "GET", emulator.bucket, "paced", {"x-cos-traffic-limit": str(rate_bits)}
    )
    elapsed = time.monotonic() - started
    assert got.status == 200 and got.body == data
    # A lower bound only: pacing may be slower on a busy machine, never faster.
    assert elapsed >= size / (rate_bits / 8) - 0.05


def test_path_style_and_any_signature_without_auth(make_emulator):
    server = make_emulator(auth=False)
    bucket = server.create_bucket("plain-1250000000")
    server.put_object(bucket, "dir/k", b"path style")
    with urllib.request.urlopen(f"{server.endpoint}/{bucket}/dir/k", timeout=10) as resp:
        assert resp.read() == b"path style"
        assert resp.headers["ETag"] == server.head_object(bucket, "dir/k").etag
    request = urllib.request.Request(
        f"{server.endpoint}/{bucket}/dir/k",
        headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.read() == b"path style"


def test_put_creates_the_bucket_and_checks_content_md5(make_emulator):
    server = make_emulator(auth=False)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request(
        "PUT", "/new-1250000000/a", body=b"abc", headers={"Content-MD5": "kAFQmDzST7DWlj99KOF/cg=="}
    )
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 200 and resp.headers["ETag"] == '"900150983cd24fb0d6963f7d28e17f72"'
    conn.request(
        "PUT", "/new-1250000000/b", body=b"abd", headers={"Content-MD5": "kAFQmDzST7DWlj99KOF/cg=="}
    )
    resp = conn.getresponse()
    assert resp.status == 400 and b"BadDigest" in resp.read()
    conn.close()
    with pytest.raises(CosError, match="NoSuchKey"):
        server.head_object("new-1250000000", "b")


def test_request_log_numbers_connections(emulator):
    emulator.put("k", b"log me")
    conn = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
    for _ in range(3):
        conn.request(
            "GET",
            "/k",
            headers=signed_headers(emulator, "GET", emulator.bucket, "k", {"Range": "bytes=1-2"}),
        )
        conn.getresponse().read()
    conn.close()
    raw_request(emulator, "GET", emulator.bucket, "k")
    log = emulator.request_log
    assert [r.status for r in log] == [206, 206, 206, 200]
    assert len({r.conn_id for r in log[:3]}) == 1 and log[3].conn_id != log[0].conn_id
    first = log[0]
    assert (first.method, first.bucket, first.key, first.range) == (
        "GET",
        emulator.bucket,
        "k",
        "bytes=1-2",
    )
    assert first.bytes_sent == 2 and first.ended >= first.started
    assert first.secret_id == emulator.secret_id
    assert "authorization" not in first.headers and "Authorization" not in str(first)
    emulator.clear_log()
    assert emulator.request_log == []


def test_admin_endpoint_exists_only_when_enabled(emulator, make_emulator):
    absent = raw_request(emulator, "GET", emulator.bucket, "-/emulator/log")
    assert absent.status == 404 and b"NoSuchKey" in absent.body
    server = make_emulator(admin=True)
    base = f"{server.endpoint}/-/emulator"

    def call(method, route, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{base}/{route}", data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    call("POST", "buckets", {"name": "adm-1250000000"})
    server.put_object("adm-1250000000", "k", b"data")
    fault = call("POST", "faults", {"kind": "status", "key": "k", "status": 500, "retry_after": 2})
    client = sdk(server)
    with pytest.raises(CosServiceError) as failed:
        client.get_object(Bucket="adm-1250000000", Key="k")
    assert failed.value.get_status_code() == 500
    faults = call("GET", "faults")
    assert faults[0]["id"] == fault["id"] and faults[0]["fired"] == 1
    log = call("GET", "log")
    assert [(r["method"], r["status"], r["faults"]) for r in log] == [("GET", 500, ["status"])]
    call("DELETE", "faults")
    call("DELETE", "log")
    assert call("GET", "faults") == [] and call("GET", "log") == []


def test_objects_survive_a_restart_on_the_same_root(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 1))
    with Emulator(tmp_path / "root") as first:
        first.create_bucket("keep-1250000000", versioning=True)
        info = first.put_object("keep-1250000000", "big", path=big)
    with Emulator(tmp_path / "root") as second:
        again = second.head_object("keep-1250000000", "big")
        assert again == info and again.crc64 == crc64(big.read_bytes())
        got = sdk(second).get_object(Bucket="keep-1250000000", Key="big", VersionId=info.version_id)
        assert got["Body"].get_raw_stream().read() == big.read_bytes()


def start_cli(root: Path, *extra: str) -> tuple[subprocess.Popen, dict]:
    """Runs ``python -m cosfast.emulator`` until it says it is ready; returns its printed fields."""
    env = {**os.environ, "PYTHONPATH": str(Path(cosfast.__file__).resolve().parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cosfast.emulator", "--root", str(root), *extra],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    while not lines or lines[-1] != "ready (Ctrl+C to stop)":
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise AssertionError(f"emulator exited early: {lines}")
        lines.append(line.strip())
    return proc, dict(line.split(": ", 1) for line in lines if ": " in line)


def stop_cli(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=20)


def test_command_line_serves_and_prints_credentials(tmp_path):
    proc, fields = start_cli(tmp_path, "--bucket", "cli-1250000000")
    try:
        host, port = fields["endpoint"].removeprefix("http://").rsplit(":", 1)
        assert fields["secret_key"] == "cosfastEmulatorTestSecret0000000"
        from qcloud_cos import CosConfig, CosS3Client

        config = CosConfig(
            Region="ap-guangzhou",
            SecretId=fields["secret_id"],
            SecretKey=fields["secret_key"],
            IP=host,
            Port=int(port),
            Scheme="http",
        )
        client = CosS3Client(config, retry=0)
        client.put_object(Bucket="cli-1250000000", Key="k", Body=b"via cli")
        body = client.get_object(Bucket="cli-1250000000", Key="k")["Body"].get_raw_stream().read()
        assert body == b"via cli"
    finally:
        assert stop_cli(proc) == 0


def test_command_line_masks_a_key_the_user_gave(tmp_path):
    proc, fields = start_cli(tmp_path, "--secret-id", "AKIDmine", "--secret-key", "my-real-secret")
    try:
        assert fields["secret_id"] == "AKIDmine"
        assert "my-real-secret" not in fields["secret_key"] and fields["secret_key"].startswith(
            "my-"
        )
    finally:
        assert stop_cli(proc) == 0
