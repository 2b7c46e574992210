"""What cosfast's facade does where the SDK has no answer: retries with backoff, bodies
resumed from the byte where they broke (If-Match pinned), CRC-checked files, pooled
connections, bounded memory, secrets kept out of logs."""
from __future__ import annotations

import logging
import os
import threading
import tracemalloc

import pytest

import cosfast
from cosfast import CosClientError, CosServiceError
from cosfast.emulator import Fault
from cosfast.transfer.retry import RetryPolicy

pytestmark = pytest.mark.timeout(60)

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)


def client_for(server, policy=FAST, **overrides):
    return cosfast.CosS3Client(cosfast.CosConfig(**server.sdk_config(**overrides)),
                               retry_policy=policy)


def gets(server, key):
    return [r for r in server.request_log if r.method == "GET" and r.key == key]


# -- retries -----------------------------------------------------------------------------------


def test_503_slowdown_is_retried_honouring_retry_after(emulator):
    emulator.put("busy", b"eventually")
    emulator.add_fault(Fault(kind="status", key="busy", status=503, retry_after=1, times=1))
    response = client_for(emulator).get_object(Bucket=emulator.bucket, Key="busy")
    assert response["Body"].read(100) == b"eventually"
    log = gets(emulator, "busy")
    assert [r.status for r in log] == [503, 200]
    assert log[1].started - log[0].started >= 0.9  # Retry-After: 1 was waited out


@pytest.mark.parametrize("status", [500, 502, 429])
def test_server_errors_and_throttling_are_retried(emulator, status):
    emulator.put("flaky", b"ok")
    emulator.add_fault(Fault(kind="status", key="flaky", status=status, times=2))
    head = client_for(emulator).head_object(Bucket=emulator.bucket, Key="flaky")
    assert head["Content-Length"] == "2"
    assert [r.status for r in emulator.request_log if r.key == "flaky"] == [status, status, 200]


def test_retries_are_bounded_and_end_in_the_servers_error(emulator):
    emulator.put("down", b"x")
    emulator.add_fault(Fault(kind="status", key="down", status=503, times=None))
    with pytest.raises(CosServiceError) as info:
        client_for(emulator).get_object(Bucket=emulator.bucket, Key="down")
    assert info.value.get_status_code() == 503
    assert info.value.get_error_code() == "SlowDown"
    assert len(gets(emulator, "down")) == FAST.max_attempts


@pytest.mark.parametrize("status", [400, 403, 404, 412])
def test_4xx_is_never_retried(emulator, status):
    emulator.put("final", b"x")
    emulator.add_fault(Fault(kind="status", key="final", status=status, times=None))
    with pytest.raises(CosServiceError) as info:
        client_for(emulator).get_object(Bucket=emulator.bucket, Key="final")
    assert info.value.get_status_code() == status
    assert len(gets(emulator, "final")) == 1


def test_sdk_retry_argument_sets_the_attempts(emulator):
    emulator.put("r0", b"x")
    emulator.add_fault(Fault(kind="status", key="r0", status=500, times=None))
    client = cosfast.CosS3Client(cosfast.CosConfig(**emulator.sdk_config()), retry=0)
    with pytest.raises(CosServiceError):
        client.head_object(Bucket=emulator.bucket, Key="r0")
    assert len([r for r in emulator.request_log if r.key == "r0"]) == 1


def test_stalled_response_times_out_and_is_retried(emulator):
    data = os.urandom(200_000)
    emulator.put("stall", data)
    emulator.add_fault(Fault(kind="stall", key="stall", after_bytes=0, seconds=4))
    response = client_for(emulator, Timeout=1).get_object(Bucket=emulator.bucket, Key="stall")
    assert response["Body"].get_raw_stream().read() == data
    assert len(gets(emulator, "stall")) == 2


# -- resuming broken bodies --------------------------------------------------------------------


def test_broken_body_is_resumed_where_it_stopped_with_if_match(emulator):
    data = os.urandom(3 * 1024 * 1024 + 11)
    info = emulator.put("drop", data)
    emulator.add_fault(Fault(kind="drop", key="drop", after_bytes=1_000_000, times=2))
    body = client_for(emulator).get_object(Bucket=emulator.bucket, Key="drop")["Body"]
    assert b"".join(iter(lambda: body.read(65536), b"")) == data
    log = gets(emulator, "drop")
    assert [r.range for r in log] == [None, "bytes=1000000-3145738", "bytes=2000000-3145738"]
    assert all(r.headers.get("if-match") == info.etag for r in log[1:])


def test_resumed_user_range_keeps_its_end(emulator):
    data = os.urandom(500_000)
    emulator.put("part", data)
    emulator.add_fault(Fault(kind="drop", key="part", after_bytes=1000))
    got = client_for(emulator).get_object(Bucket=emulator.bucket, Key="part", Range="bytes=-300000")
    assert got["Body"].get_raw_stream().read() == data[-300000:]
    assert [r.range for r in gets(emulator, "part")] == ["bytes=-300000", "bytes=201000-499999"]


def test_object_replaced_mid_body_stops_with_a_clear_error(emulator, tmp_path):
    emulator.put("moving", os.urandom(1_000_000))
    emulator.add_fault(Fault(kind="drop", key="moving", after_bytes=100_000))
    emulator.add_fault(Fault(kind="replace", key="moving", nth=2))
    body = client_for(emulator).get_object(Bucket=emulator.bucket, Key="moving")["Body"]
    with pytest.raises(CosClientError, match="changed on the server"):
        body.get_stream_to_file(str(tmp_path / "out"))
    assert os.listdir(tmp_path) == []


def test_drop_without_retries_left_is_a_client_error_not_pycurl(emulator):
    emulator.put("gone", os.urandom(100_000))
    emulator.add_fault(Fault(kind="drop", key="gone", after_bytes=10, times=None))
    body = client_for(emulator, RetryPolicy(max_attempts=2, base_delay=0.01)).get_object(
        Bucket=emulator.bucket, Key="gone")["Body"]
    with pytest.raises(CosClientError, match="curl error 18"):
        body.get_raw_stream().read()


# -- get_stream_to_file ------------------------------------------------------------------------


def test_stream_to_file_resumes_into_the_same_temp_file(emulator, tmp_path):
    data = os.urandom(2 * 1024 * 1024)
    emulator.put("f", data)
    emulator.add_fault(Fault(kind="drop", key="f", after_bytes=700_000))
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old contents")
    client_for(emulator).get_object(Bucket=emulator.bucket, Key="f")["Body"].get_stream_to_file(str(dest))
    assert dest.read_bytes() == data
    assert os.listdir(tmp_path) == ["f.bin"]
    assert [r.range for r in gets(emulator, "f")] == [None, "bytes=700000-2097151"]


def test_flipped_byte_is_caught_by_crc_and_nothing_is_published(emulator, tmp_path):
    emulator.put("flip", os.urandom(300_000))
    emulator.add_fault(Fault(kind="flip", key="flip", offset=123_456))
    dest = tmp_path / "flip.bin"
    dest.write_bytes(b"keep me")
    body = client_for(emulator).get_object(Bucket=emulator.bucket, Key="flip")["Body"]
    with pytest.raises(CosClientError, match="CRC-64"):
        body.get_stream_to_file(str(dest))
    assert dest.read_bytes() == b"keep me"
    assert os.listdir(tmp_path) == ["flip.bin"]


def test_object_without_crc_header_still_downloads(emulator, tmp_path):
    data = os.urandom(10_000)
    emulator.put("old", data, with_crc=False)
    response = client_for(emulator).get_object(Bucket=emulator.bucket, Key="old")
    assert "x-cos-hash-crc64ecma" not in response
    response["Body"].get_stream_to_file(str(tmp_path / "old"))
    assert (tmp_path / "old").read_bytes() == data


def test_write_error_is_reported_and_cleaned_up(emulator, tmp_path):
    emulator.put("w", os.urandom(10_000))
    body = client_for(emulator).get_object(Bucket=emulator.bucket, Key="w")["Body"]
    with pytest.raises(OSError):
        body.get_stream_to_file(str(tmp_path / "no-such-dir" / "w"))
    assert os.listdir(tmp_path) == []


# -- connections and memory --------------------------------------------------------------------


def test_sequential_requests_reuse_one_connection(emulator):
    for i in range(5):
        emulator.put(f"k{i}", b"x" * 1000)
    client = client_for(emulator)
    for i in range(5):
        client.get_object(Bucket=emulator.bucket, Key=f"k{i}")["Body"].read(2000)
        client.head_object(Bucket=emulator.bucket, Key=f"k{i}")
    client.list_objects(Bucket=emulator.bucket)
    assert len({r.conn_id for r in emulator.request_log}) == 1
    assert client._transport.pool.created == 1


def test_keepalive_false_opens_a_connection_per_request(emulator):
    emulator.put("k", b"x")
    client = client_for(emulator, KeepAlive=False)
    for _ in range(3):
        client.head_object(Bucket=emulator.bucket, Key="k")
    assert len({r.conn_id for r in emulator.request_log}) == 3


def test_pool_grows_to_the_concurrency_used(emulator):
    emulator.put("c", os.urandom(100_000))
    client = client_for(emulator)
    bodies = [client.get_object(Bucket=emulator.bucket, Key="c")["Body"] for _ in range(4)]
    assert client._transport.pool.created == 4  # four bodies open at once
    for body in bodies:
        body.read(200_000)
    assert client._transport.pool.idle_count() == 4
    errors = []

    def worker():
        try:
            for _ in range(5):
                client.get_object(Bucket=emulator.bucket, Key="c")["Body"].read(200_000)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert client._transport.pool.created == 4  # three threads fit in the four slots


def test_streaming_memory_is_bounded(emulator):
    size = 48 * 1024 * 1024
    emulator.put("big", path=None, data=b"\xab" * size)
    body = client_for(emulator).get_object(Bucket=emulator.bucket, Key="big")["Body"]
    tracemalloc.start()
    try:
        seen = 0
        while True:
            chunk = body.read(1 << 20)
            if not chunk:
                break
            seen += len(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == size
    assert peak < 8 * 1024 * 1024


# -- secrets -----------------------------------------------------------------------------------


def test_secrets_stay_out_of_logs_reprs_and_errors(emulator, caplog):
    creds = emulator.create_temporary_credentials(expires_in=600)
    emulator.put("s", b"x")
    emulator.add_fault(Fault(kind="status", key="s", status=503, times=1))
    client = client_for(emulator, SecretId=creds.secret_id, SecretKey=creds.secret_key,
                        Token=creds.token)
    texts = []
    with caplog.at_level(logging.DEBUG):
        response = client.get_object(Bucket=emulator.bucket, Key="s")
        texts.append(repr(response))
        texts.append(repr(client))
        texts.append(repr(client.get_conf()))
        for call in (lambda: client.get_object(Bucket=emulator.bucket, Key="missing"),
                     lambda: client_for(emulator, SecretKey=creds.secret_key, SecretId="AKIDx",
                                        Token=creds.token).list_objects(Bucket=emulator.bucket),
                     lambda: client_for(emulator, Port=1, Token=creds.token).head_object(
                         Bucket=emulator.bucket, Key="s")):
            with pytest.raises((CosServiceError, CosClientError)) as info:
                call()
            texts.append(str(info.value))
            texts.append(repr(info.value))
    texts.extend(record.getMessage() for record in caplog.records)
    assert any("retrying" in t for t in texts)  # the log did record the retry
    joined = "\n".join(texts)
    for secret in (creds.secret_key, creds.token, "q-signature"):
        assert secret not in joined
