"""The official SDK (qcloud_cos) as the real client of the emulator: what it sends must be
accepted, and what the emulator answers must parse into what COS would give."""

from __future__ import annotations

import hashlib
import os
import time
from email.utils import formatdate

import pytest
import requests
from emulator_helpers import sdk
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosClientError, CosServiceError

from cosfast.crc64 import crc64
from cosfast.emulator import CosError, Fault

pytestmark = pytest.mark.timeout(60)


def test_head_object_describes_the_stored_object(emulator):
    info = emulator.put(
        "dir/a.txt",
        b"hello world" * 100,
        content_type="text/plain",
        metadata={"x-cos-meta-owner": "ops"},
        headers={"Cache-Control": "max-age=60"},
    )
    head = sdk(emulator).head_object(Bucket=emulator.bucket, Key="dir/a.txt")
    assert head["ETag"] == info.etag == '"{}"'.format(hashlib.md5(b"hello world" * 100).hexdigest())
    assert head["Content-Length"] == "1100"
    assert head["Content-Type"] == "text/plain"
    assert head["Last-Modified"] == info.last_modified
    assert head["x-cos-hash-crc64ecma"] == str(crc64(b"hello world" * 100))
    assert head["x-cos-meta-owner"] == "ops"
    assert head["Cache-Control"] == "max-age=60"
    assert head["Server"] == "tencent-cos"
    assert head["Accept-Ranges"] == "bytes"
    assert head["x-cos-request-id"]


def test_get_object_whole_and_ranged(emulator):
    data = os.urandom(100_000)
    emulator.put("blob", data)
    client = sdk(emulator)
    whole = client.get_object(Bucket=emulator.bucket, Key="blob")
    assert whole["Body"].get_raw_stream().read() == data
    part = client.get_object(Bucket=emulator.bucket, Key="blob", Range="bytes=1000-1999")
    assert part["Body"].get_raw_stream().read() == data[1000:2000]
    assert part["Content-Range"] == "bytes 1000-1999/100000"
    assert part["Content-Length"] == "1000"
    # COS sends the whole object's CRC on a 206, not the part's.
    assert part["x-cos-hash-crc64ecma"] == str(crc64(data))
    tail = client.get_object(Bucket=emulator.bucket, Key="blob", Range="bytes=-10")
    assert tail["Body"].get_raw_stream().read() == data[-10:]
    rest = client.get_object(Bucket=emulator.bucket, Key="blob", Range="bytes=99990-")
    assert rest["Body"].get_raw_stream().read() == data[99990:]


def test_sdk_signed_traffic_limit_is_accepted_and_checked(emulator):
    emulator.put("tl", b"limited")
    client = sdk(emulator)
    got = client.get_object(Bucket=emulator.bucket, Key="tl", TrafficLimit="838860800")
    assert got["Body"].get_raw_stream().read() == b"limited"
    assert emulator.request_log[-1].headers["x-cos-traffic-limit"] == "838860800"
    with pytest.raises(CosServiceError) as bad:
        client.get_object(Bucket=emulator.bucket, Key="tl", TrafficLimit="100")
    assert (bad.value.get_status_code(), bad.value.get_error_code()) == (400, "InvalidArgument")


def test_get_object_to_file(emulator, tmp_path):
    data = os.urandom(300_000)
    emulator.put("f.bin", data)
    response = sdk(emulator).get_object(Bucket=emulator.bucket, Key="f.bin")
    response["Body"].get_stream_to_file(str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == data


def test_conditional_get_follows_cos(emulator):
    info = emulator.put("c", b"conditional")
    client = sdk(emulator)
    ok = client.get_object(Bucket=emulator.bucket, Key="c", IfMatch=info.etag)
    assert ok["Body"].get_raw_stream().read() == b"conditional"

    with pytest.raises(CosServiceError) as failed:
        client.get_object(
            Bucket=emulator.bucket, Key="c", IfMatch='"0123456789abcdef0123456789abcdef"'
        )
    assert failed.value.get_status_code() == 412
    assert failed.value.get_error_code() == "PreconditionFailed"

    past = formatdate(time.time() - 3600, usegmt=True)
    with pytest.raises(CosServiceError) as failed:
        client.get_object(Bucket=emulator.bucket, Key="c", IfUnmodifiedSince=past)
    assert failed.value.get_status_code() == 412

    # 304 is below 400, so the SDK does not raise: it hands back the bodiless answer's headers.
    not_modified = client.head_object(Bucket=emulator.bucket, Key="c", IfNoneMatch=info.etag)
    assert not_modified["ETag"] == info.etag and "Content-Length" not in not_modified
    future = formatdate(time.time() + 3600, usegmt=True)
    log_before = len(emulator.request_log)
    client.head_object(Bucket=emulator.bucket, Key="c", IfModifiedSince=future)
    assert emulator.request_log[log_before].status == 304
    # If-Match wins over a failing If-Unmodified-Since (RFC 9110 order, as COS).
    both = client.get_object(
        Bucket=emulator.bucket, Key="c", IfMatch=info.etag, IfUnmodifiedSince=past
    )
    assert both["Body"].get_raw_stream().read() == b"conditional"


def test_response_overrides(emulator):
    emulator.put("o", b"override me", content_type="application/octet-stream")
    got = sdk(emulator).get_object(
        Bucket=emulator.bucket,
        Key="o",
        ResponseContentType="text/csv",
        ResponseContentDisposition='attachment; filename="x.csv"',
        ResponseCacheControl="no-cache",
        ResponseContentLanguage="zh-cn",
        ResponseContentEncoding="identity",
        ResponseExpires="Wed, 28 Oct 2026 20:30:00 GMT",
    )
    assert got["Content-Type"] == "text/csv"
    assert got["Content-Disposition"] == 'attachment; filename="x.csv"'
    assert got["Cache-Control"] == "no-cache"
    assert got["Content-Language"] == "zh-cn"
    assert got["Content-Encoding"] == "identity"
    assert got["Expires"] == "Wed, 28 Oct 2026 20:30:00 GMT"
    assert got["Body"].get_raw_stream().read() == b"override me"


def test_list_objects_pages_with_next_marker_without_delimiter(emulator):
    keys = sorted(f"k/{i:03d}" for i in range(25))
    for key in keys:
        emulator.put(key, b"x")
    client = sdk(emulator)
    seen, marker, pages = [], "", 0
    while True:
        page = client.list_objects(Bucket=emulator.bucket, Marker=marker, MaxKeys=10)
        pages += 1
        seen += [c["Key"] for c in page.get("Contents", [])]
        if page["IsTruncated"] == "false":
            assert "NextMarker" not in page
            break
        # COS (unlike S3) sends NextMarker on every truncated page, delimiter or not.
        assert page["NextMarker"] == seen[-1]
        marker = page["NextMarker"]
    assert seen == keys and pages == 3


def test_list_objects_delimiter_counts_prefixes_with_keys(emulator):
    for key in ["a/1", "a/2", "b/1", "c", "d/x/y", "e"]:
        emulator.put(key, b"x")
    client = sdk(emulator)
    first = client.list_objects(Bucket=emulator.bucket, Delimiter="/", MaxKeys=3)
    assert [p["Prefix"] for p in first["CommonPrefixes"]] == ["a/", "b/"]
    assert [c["Key"] for c in first["Contents"]] == ["c"]
    assert first["IsTruncated"] == "true" and first["NextMarker"] == "c"
    second = client.list_objects(Bucket=emulator.bucket, Delimiter="/", Marker="c", MaxKeys=3)
    assert [p["Prefix"] for p in second["CommonPrefixes"]] == ["d/"]
    assert [c["Key"] for c in second["Contents"]] == ["e"]
    assert second["IsTruncated"] == "false"
    # A marker on a common prefix continues after everything under it.
    after_a = client.list_objects(Bucket=emulator.bucket, Delimiter="/", Marker="a/")
    assert [p["Prefix"] for p in after_a["CommonPrefixes"]] == ["b/", "d/"]
    under_d = client.list_objects(Bucket=emulator.bucket, Prefix="d/", Delimiter="/")
    assert [p["Prefix"] for p in under_d["CommonPrefixes"]] == ["d/x/"]


def test_list_objects_url_encoding_round_trips_awkward_keys(emulator):
    keys = sorted(
        ["sp ace", "plus+sign", "per%cent", "amp&lt", "中文/文件", "tab\tkey", "q?x=1#frag"]
    )
    for key in keys:
        emulator.put(key, b"x")
    client = sdk(emulator)
    listed = client.list_objects(Bucket=emulator.bucket)
    assert [c["Key"] for c in listed["Contents"]] == keys
    raw = client.list_objects(Bucket=emulator.bucket, EncodingType="url", Prefix="中文/")
    assert raw["Prefix"] == "%E4%B8%AD%E6%96%87%2F"
    assert [c["Key"] for c in raw["Contents"]] == ["%E4%B8%AD%E6%96%87%2F%E6%96%87%E4%BB%B6"]
    for key in keys:
        body = client.get_object(Bucket=emulator.bucket, Key=key)["Body"].get_raw_stream().read()
        assert body == b"x", key


def test_listing_faults_reach_the_sdk_as_service_errors(emulator):
    emulator.put("k/1", b"x")
    emulator.put("k/2", b"x")
    emulator.add_fault(Fault(kind="status", scope="listing", status=503, retry_after=1))
    emulator.add_fault(Fault(kind="status", scope="listing", marker="k/1", status=500))
    client = sdk(emulator)
    with pytest.raises(CosServiceError) as slow_down:
        client.list_objects(Bucket=emulator.bucket, MaxKeys=1)
    assert (slow_down.value.get_status_code(), slow_down.value.get_error_code()) == (
        503,
        "SlowDown",
    )
    assert slow_down.value.get_request_id() == emulator.request_log[-1].request_id
    first = client.list_objects(Bucket=emulator.bucket, MaxKeys=1)
    assert [c["Key"] for c in first["Contents"]] == ["k/1"]
    # Listing faults leave objects alone: the 500 for the second page is still waiting.
    assert client.get_object(Bucket=emulator.bucket, Key="k/1")["Body"].get_raw_stream().read()
    with pytest.raises(CosServiceError) as internal:
        client.list_objects(Bucket=emulator.bucket, Marker=first["NextMarker"], MaxKeys=1)
    assert (internal.value.get_status_code(), internal.value.get_error_code()) == (
        500,
        "InternalError",
    )


@pytest.mark.parametrize(
    "size,part_mib", [(300_000, 1), (3 * 1024 * 1024 + 12345, 1)], ids=["single", "parts"]
)
def test_download_file_with_crc(emulator, tmp_path, size, part_mib):
    data = os.urandom(size)
    emulator.put("big.bin", data)
    dest = tmp_path / "big.bin"
    sdk(emulator).download_file(
        Bucket=emulator.bucket,
        Key="big.bin",
        DestFilePath=str(dest),
        PartSize=part_mib,
        MAXThread=3,
        EnableCRC=True,
        DumpRecordDir=str(tmp_path / "records"),
    )
    assert dest.read_bytes() == data
    gets = [r for r in emulator.request_log if r.method == "GET"]
    assert emulator.peak_concurrency() <= 3  # MAXThread
    if size > part_mib * 1024 * 1024:
        assert sorted(r.range for r in gets) == sorted(
            f"bytes={s}-{min(s + 1048576, size) - 1}" for s in range(0, size, 1048576)
        )
    else:
        assert [r.range for r in gets] == [None]


def test_download_file_crc_catches_a_flipped_byte(emulator, tmp_path):
    data = os.urandom(2 * 1024 * 1024 + 7)
    emulator.put("flip.bin", data)
    emulator.add_fault(Fault(kind="flip", key="flip.bin", offset=1_500_000))
    with pytest.raises(CosClientError, match="crc"):
        sdk(emulator).download_file(
            Bucket=emulator.bucket,
            Key="flip.bin",
            DestFilePath=str(tmp_path / "out"),
            PartSize=1,
            EnableCRC=True,
            DumpRecordDir=str(tmp_path / "records"),
        )


def test_missing_key_and_bucket_raise_cos_errors(emulator):
    client = sdk(emulator)
    with pytest.raises(CosServiceError) as missing:
        client.get_object(Bucket=emulator.bucket, Key="nope")
    error = missing.value
    assert (error.get_status_code(), error.get_error_code()) == (404, "NoSuchKey")
    assert error.get_request_id() and error.get_trace_id() != "Unknown"
    assert error.get_resource_location().endswith("/nope")
    with pytest.raises(CosServiceError) as no_bucket:
        client.get_object(Bucket="absent-1250000000", Key="x")
    assert no_bucket.value.get_error_code() == "NoSuchBucket"
    with pytest.raises(CosServiceError) as head_missing:
        client.head_object(Bucket=emulator.bucket, Key="nope")
    assert head_missing.value.get_status_code() == 404


def test_wrong_secret_is_signature_does_not_match(emulator):
    emulator.put("s", b"secret stuff")
    with pytest.raises(CosServiceError) as wrong:
        sdk(emulator, SecretKey="not-the-key").get_object(Bucket=emulator.bucket, Key="s")
    assert (wrong.value.get_status_code(), wrong.value.get_error_code()) == (
        403,
        "SignatureDoesNotMatch",
    )
    with pytest.raises(CosServiceError) as unknown:
        sdk(emulator, SecretId="AKIDunknown").get_object(Bucket=emulator.bucket, Key="s")
    assert unknown.value.get_error_code() == "InvalidAccessKeyId"


def test_presigned_urls_work_and_expire(emulator):
    emulator.put("p", b"presigned")
    client = sdk(emulator)
    host = {"Host": f"{emulator.bucket}.cos.{emulator.region}.myqcloud.com"}
    # Configured with IP=, the SDK's URL holds no bucket: the Host header must, and be signed.
    url = client.get_presigned_download_url(
        Bucket=emulator.bucket, Key="p", Expired=300, Headers=host
    )
    got = requests.get(url, headers=host, timeout=10)
    assert got.status_code == 200 and got.content == b"presigned"
    expired = client.get_presigned_download_url(
        Bucket=emulator.bucket, Key="p", Expired=-61, Headers=host
    )
    got = requests.get(expired, headers=host, timeout=10)
    assert got.status_code == 403
    assert b"<Code>AccessDenied</Code>" in got.content and b"expired" in got.content
    tampered = url.replace("q-signature=", "q-signature=0")
    assert requests.get(tampered, headers=host, timeout=10).status_code == 403


def test_temporary_credentials_need_their_token(emulator):
    emulator.put("t", b"temporary")
    creds = emulator.create_temporary_credentials(expires_in=600)
    with_token = sdk(
        emulator, SecretId=creds.secret_id, SecretKey=creds.secret_key, Token=creds.token
    )
    assert (
        with_token.get_object(Bucket=emulator.bucket, Key="t")["Body"].get_raw_stream().read()
        == b"temporary"
    )
    for token in (None, "wrong-token"):
        client = sdk(emulator, SecretId=creds.secret_id, SecretKey=creds.secret_key, Token=token)
        with pytest.raises(CosServiceError) as denied:
            client.get_object(Bucket=emulator.bucket, Key="t")
        assert denied.value.get_error_code() == "AccessDenied"
    expired = emulator.create_temporary_credentials(expires_in=-1)
    client = sdk(
        emulator, SecretId=expired.secret_id, SecretKey=expired.secret_key, Token=expired.token
    )
    with pytest.raises(CosServiceError) as denied:
        client.get_object(Bucket=emulator.bucket, Key="t")
    assert denied.value.get_error_code() == "AccessDenied"
    assert creds.secret_key not in repr(creds) and creds.token not in repr(creds)


def test_anonymous_reads_only_public_buckets(emulator):
    public = emulator.create_bucket(emulator.bucket.replace("-", "p-", 1), public_read=True)
    emulator.put_object(public, "pub", b"public")
    emulator.put("priv", b"private")
    anonymous = CosS3Client(
        CosConfig(
            Region=emulator.region,
            IP=emulator.host,
            Port=emulator.port,
            Scheme="http",
            Anonymous=True,
        ),
        retry=0,
    )
    assert (
        anonymous.get_object(Bucket=public, Key="pub")["Body"].get_raw_stream().read() == b"public"
    )
    with pytest.raises(CosServiceError) as denied:
        anonymous.get_object(Bucket=emulator.bucket, Key="priv")
    assert denied.value.get_error_code() == "AccessDenied"
    with pytest.raises(CosServiceError):
        anonymous.put_object(Bucket=public, Key="w", Body=b"write")
    with pytest.raises(CosServiceError) as denied:
        anonymous.put_object(Bucket="anon-1250000000", Key="w", Body=b"write")
    assert denied.value.get_error_code() == "AccessDenied"
    with pytest.raises(CosError, match="NoSuchBucket"):
        emulator.head_object("anon-1250000000", "w")  # an anonymous PUT creates nothing


def test_put_object_through_the_sdk(emulator):
    client = sdk(emulator)
    body = os.urandom(50_000)
    put = client.put_object(
        Bucket=emulator.bucket,
        Key="up/loaded",
        Body=body,
        ContentType="image/png",
        Metadata={"x-cos-meta-a": "1"},
    )
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert put["x-cos-hash-crc64ecma"] == str(crc64(body))
    head = client.head_object(Bucket=emulator.bucket, Key="up/loaded")
    assert head["Content-Type"] == "image/png" and head["x-cos-meta-a"] == "1"
    assert emulator.head_object(emulator.bucket, "up/loaded").size == 50_000
    client.delete_object(Bucket=emulator.bucket, Key="up/loaded")
    with pytest.raises(CosServiceError):
        client.head_object(Bucket=emulator.bucket, Key="up/loaded")


def test_versioned_bucket_serves_old_versions(emulator):
    bucket = emulator.create_bucket(emulator.bucket.replace("-", "v-", 1), versioning=True)
    v1 = emulator.put_object(bucket, "doc", b"first")
    v2 = emulator.put_object(bucket, "doc", b"second")
    assert v1.version_id and v2.version_id and v1.version_id != v2.version_id
    client = sdk(emulator)
    latest = client.get_object(Bucket=bucket, Key="doc")
    assert latest["x-cos-version-id"] == v2.version_id
    assert latest["Body"].get_raw_stream().read() == b"second"
    old = client.get_object(Bucket=bucket, Key="doc", VersionId=v1.version_id)
    assert old["Body"].get_raw_stream().read() == b"first"
    with pytest.raises(CosServiceError) as missing:
        client.get_object(Bucket=bucket, Key="doc", VersionId="bm9zdWNodmVyc2lvbg")
    assert missing.value.get_error_code() == "NoSuchVersion"


def test_domain_clients_use_the_default_bucket(make_emulator):
    server = make_emulator(default_bucket="examplebucket-1250000000")
    server.put_object("examplebucket-1250000000", "d/k", b"by domain")
    client = CosS3Client(
        CosConfig(
            Region=server.region,
            SecretId=server.secret_id,
            SecretKey=server.secret_key,
            Domain=f"{server.host}:{server.port}",
            Scheme="http",
        ),
        retry=0,
    )
    got = client.get_object(Bucket="examplebucket-1250000000", Key="d/k")
    assert got["Body"].get_raw_stream().read() == b"by domain"


def test_sdk_over_tls(make_emulator, tls_files):
    server = make_emulator(tls=(tls_files.certfile, tls_files.keyfile))
    assert server.endpoint.startswith("https://")
    bucket = server.create_bucket("tls-1250000000")
    server.put_object(bucket, "k", b"over tls")
    client = sdk(server, VerifySSL=str(tls_files.ca_file))
    assert client.get_object(Bucket=bucket, Key="k")["Body"].get_raw_stream().read() == b"over tls"
    untrusting = sdk(server, VerifySSL=True)
    with pytest.raises(CosClientError):
        untrusting.head_object(Bucket=bucket, Key="k")
