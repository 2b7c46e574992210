"""The facade suite: the official SDK and cosfast, same calls, same emulator, same answers.

Each test runs once per implementation (``impl``) and asserts what COS users rely on; the
``*_same_as_sdk`` tests also run both side by side and compare whole results."""
from __future__ import annotations

import os
import time
import types
from email.utils import formatdate

import pytest
from facade_impls import COSFAST, IMPLS, SDK, accessors, stable

from cosfast.crc64 import crc64

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=IMPLS, ids=repr)
def impl(request):
    return request.param


def body_of(response) -> bytes:
    return response["Body"].get_raw_stream().read()


# -- bytes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 1000, 1024 * 1024 + 7])
def test_whole_get_bytes_and_headers(emulator, impl, size):
    data = os.urandom(size)
    info = emulator.put("whole.bin", data, content_type="application/x-test",
                        metadata={"x-cos-meta-owner": "ops"})
    got = impl.client(emulator).get_object(Bucket=emulator.bucket, Key="whole.bin")
    assert body_of(got) == data
    assert got["ETag"] == info.etag
    assert got["Content-Length"] == str(size)
    assert got["Content-Type"] == "application/x-test"
    assert got["x-cos-meta-owner"] == "ops"
    assert got["x-cos-hash-crc64ecma"] == str(crc64(data))
    assert len(got["Body"]) == size


@pytest.mark.parametrize("rng, span", [
    ("bytes=0-0", (0, 1)),
    ("bytes=1000-1999", (1000, 2000)),
    ("bytes=99990-", (99990, 100000)),
    ("bytes=-10", (99990, 100000)),
    ("bytes=50000-200000", (50000, 100000)),
])
def test_ranged_get(emulator, impl, rng, span):
    data = os.urandom(100_000)
    emulator.put("r.bin", data)
    got = impl.client(emulator).get_object(Bucket=emulator.bucket, Key="r.bin", Range=rng)
    assert body_of(got) == data[span[0]:span[1]]
    assert got["Content-Range"] == f"bytes {span[0]}-{span[1] - 1}/100000"
    assert got["x-cos-hash-crc64ecma"] == str(crc64(data))


def test_get_responses_same_as_sdk(emulator):
    data = os.urandom(5000)
    emulator.put("same.bin", data, headers={"Cache-Control": "max-age=60"},
                 metadata={"x-cos-meta-a": "1", "x-cos-meta-b": "two"})
    for kwargs in ({}, {"Range": "bytes=10-20"}, {"ResponseContentType": "text/csv"}):
        theirs = SDK.client(emulator).get_object(Bucket=emulator.bucket, Key="same.bin", **kwargs)
        ours = COSFAST.client(emulator).get_object(Bucket=emulator.bucket, Key="same.bin", **kwargs)
        assert list(stable(ours)) == list(stable(theirs))
        assert stable(ours) == stable(theirs)
        assert set(ours) == set(theirs)
        assert body_of(ours) == body_of(theirs)
    theirs = SDK.client(emulator).head_object(Bucket=emulator.bucket, Key="same.bin")
    ours = COSFAST.client(emulator).head_object(Bucket=emulator.bucket, Key="same.bin")
    assert stable(ours) == stable(theirs) and set(ours) == set(theirs)


def test_stream_body_interfaces(emulator, impl, tmp_path):
    data = os.urandom(300_000)
    emulator.put("s.bin", data)
    client = impl.client(emulator)

    def get():
        return client.get_object(Bucket=emulator.bucket, Key="s.bin")["Body"]

    body = get()
    chunks = []
    while True:
        chunk = body.read(7000)
        if not chunk:
            break
        chunks.append(chunk)
    assert b"".join(chunks) == data
    assert all(len(c) == 7000 for c in chunks[:-1])
    assert b"".join(get()) == data
    assert b"".join(get().get_stream(4096)) == data
    raw = get().get_raw_stream()
    assert raw.read(10) == data[:10] and raw.read() == data[10:]
    get().get_stream_to_file(str(tmp_path / "a"))
    get().get_stream_to_file(str(tmp_path / "b"), disable_tmp_file=True)
    assert (tmp_path / "a").read_bytes() == data == (tmp_path / "b").read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]
    with open(tmp_path / "c", "wb") as fdst:
        fdst.truncate(10)
        get().pget_stream_to_file(fdst, 10, len(data))
    assert (tmp_path / "c").read_bytes() == b"\0" * 10 + data


def test_content_encoded_object(emulator, impl, tmp_path):
    import gzip

    plain = b"compress me " * 5000
    packed = gzip.compress(plain)
    emulator.put("z.txt", packed, headers={"Content-Encoding": "gzip"})
    client = impl.client(emulator)

    def get():
        return client.get_object(Bucket=emulator.bucket, Key="z.txt")["Body"]

    assert get().read(len(packed) + 10) == packed  # read() keeps the stored bytes
    assert b"".join(get()) == plain  # iteration decodes, as requests' iter_content
    get().get_stream_to_file(str(tmp_path / "raw"))
    get().get_stream_to_file(str(tmp_path / "plain"), auto_decompress=True)
    assert (tmp_path / "raw").read_bytes() == packed
    assert (tmp_path / "plain").read_bytes() == plain


# -- conditions, overrides, versions -------------------------------------------------------------


def test_conditional_gets(emulator, impl):
    info = emulator.put("c", b"conditional")
    client = impl.client(emulator)
    assert body_of(client.get_object(Bucket=emulator.bucket, Key="c", IfMatch=info.etag)) == b"conditional"
    past = formatdate(time.time() - 3600, usegmt=True)
    future = formatdate(time.time() + 3600, usegmt=True)
    for kwargs in ({"IfMatch": '"0123456789abcdef0123456789abcdef"'}, {"IfUnmodifiedSince": past}):
        with pytest.raises(impl.CosServiceError) as failed:
            client.get_object(Bucket=emulator.bucket, Key="c", **kwargs)
        assert failed.value.get_status_code() == 412
        assert failed.value.get_error_code() == "PreconditionFailed"
    # A 304 has no body and no length: both refuse to make a StreamBody of it.
    for kwargs in ({"IfNoneMatch": info.etag}, {"IfModifiedSince": future}):
        with pytest.raises(IOError, match="create StreamBody failed"):
            client.get_object(Bucket=emulator.bucket, Key="c", **kwargs)
        head = client.head_object(Bucket=emulator.bucket, Key="c", **kwargs)
        assert head["ETag"] == info.etag and "Content-Length" not in head
    both = client.get_object(Bucket=emulator.bucket, Key="c", IfMatch=info.etag, IfUnmodifiedSince=past)
    assert body_of(both) == b"conditional"


def test_response_overrides(emulator, impl):
    emulator.put("o", b"override me", content_type="application/octet-stream")
    got = impl.client(emulator).get_object(
        Bucket=emulator.bucket, Key="o", ResponseContentType="text/csv",
        ResponseContentDisposition='attachment; filename="x y+z.csv"',
        ResponseCacheControl="no-cache", ResponseContentLanguage="zh-cn",
        ResponseContentEncoding="identity", ResponseExpires="Wed, 28 Oct 2026 20:30:00 GMT")
    assert got["Content-Type"] == "text/csv"
    assert got["Content-Disposition"] == 'attachment; filename="x y+z.csv"'
    assert got["Cache-Control"] == "no-cache"
    assert got["Content-Language"] == "zh-cn"
    assert got["Content-Encoding"] == "identity"
    assert got["Expires"] == "Wed, 28 Oct 2026 20:30:00 GMT"
    assert body_of(got) == b"override me"


def test_versions(emulator, impl):
    bucket = emulator.create_bucket(emulator.bucket.replace("-", "v-", 1), versioning=True)
    v1 = emulator.put_object(bucket, "doc", b"first")
    v2 = emulator.put_object(bucket, "doc", b"second")
    client = impl.client(emulator)
    latest = client.get_object(Bucket=bucket, Key="doc")
    assert latest["x-cos-version-id"] == v2.version_id and body_of(latest) == b"second"
    old = client.get_object(Bucket=bucket, Key="doc", VersionId=v1.version_id)
    assert old["x-cos-version-id"] == v1.version_id and body_of(old) == b"first"
    assert client.head_object(Bucket=bucket, Key="doc", VersionId=v1.version_id)["Content-Length"] == "5"
    with pytest.raises(impl.CosServiceError) as missing:
        client.get_object(Bucket=bucket, Key="doc", VersionId="bm9zdWNodmVyc2lvbg")
    assert missing.value.get_error_code() == "NoSuchVersion"


# -- errors ------------------------------------------------------------------------------------


def _service_error(impl, call):
    with pytest.raises(impl.CosServiceError) as info:
        call()
    assert type(info.value) is impl.CosServiceError
    return info.value


def test_missing_key_and_bucket(emulator, impl):
    client = impl.client(emulator)
    missing = _service_error(impl, lambda: client.get_object(Bucket=emulator.bucket, Key="nope"))
    assert (missing.get_status_code(), missing.get_error_code()) == (404, "NoSuchKey")
    assert missing.get_request_id() and missing.get_trace_id() != "Unknown"
    assert missing.get_resource_location().endswith("/nope")
    assert "NoSuchKey" in missing.get_origin_msg()
    no_bucket = _service_error(impl, lambda: client.get_object(Bucket="absent-1250000000", Key="x"))
    assert no_bucket.get_error_code() == "NoSuchBucket"
    listing = _service_error(impl, lambda: client.list_objects(Bucket="absent-1250000000"))
    assert listing.get_error_code() == "NoSuchBucket"
    head = _service_error(impl, lambda: client.head_object(Bucket=emulator.bucket, Key="nope"))
    assert head.get_status_code() == 404 and head.get_error_code() == "NoSuchResource"
    assert head.get_resource_location() == client.get_object_url(emulator.bucket, "nope")
    assert client.object_exists(Bucket=emulator.bucket, Key="nope") is False
    emulator.put("yes", b"1")
    assert client.object_exists(Bucket=emulator.bucket, Key="yes") is True


def test_errors_same_as_sdk(emulator):
    emulator.put("k", b"x")
    calls = {
        "missing": lambda c: c.get_object(Bucket=emulator.bucket, Key="missing"),
        "bucket": lambda c: c.get_object(Bucket="absent-1250000000", Key="k"),
        "head": lambda c: c.head_object(Bucket=emulator.bucket, Key="missing"),
        "precondition": lambda c: c.get_object(Bucket=emulator.bucket, Key="k", IfMatch='"no"'),
        "list": lambda c: c.list_objects(Bucket="absent-1250000000"),
    }
    for name, call in calls.items():
        theirs = _service_error(SDK, lambda call=call: call(SDK.client(emulator)))
        ours = _service_error(COSFAST, lambda call=call: call(COSFAST.client(emulator)))
        assert accessors(ours) == accessors(theirs), name
        assert type(ours.get_digest_msg()) is type(theirs.get_digest_msg()), name


def test_wrong_keys(emulator, impl):
    emulator.put("s", b"secret stuff")
    wrong = _service_error(impl, lambda: impl.client(emulator, SecretKey="not-the-key")
                           .get_object(Bucket=emulator.bucket, Key="s"))
    assert (wrong.get_status_code(), wrong.get_error_code()) == (403, "SignatureDoesNotMatch")
    unknown = _service_error(impl, lambda: impl.client(emulator, SecretId="AKIDunknown")
                             .get_object(Bucket=emulator.bucket, Key="s"))
    assert unknown.get_error_code() == "InvalidAccessKeyId"
    listing = _service_error(impl, lambda: impl.client(emulator, SecretKey="nope")
                             .list_objects(Bucket=emulator.bucket))
    assert listing.get_error_code() == "SignatureDoesNotMatch"
    head = _service_error(impl, lambda: impl.client(emulator, SecretKey="nope")
                          .head_object(Bucket=emulator.bucket, Key="s"))
    assert head.get_status_code() == 403


def test_expired_signature(emulator, impl, monkeypatch):
    from qcloud_cos import cos_auth as sdk_auth

    from cosfast import auth as our_auth

    emulator.put("e", b"late")
    # Requests are signed for 10000 s: a clock a day behind signs an expired request.
    clock = types.SimpleNamespace(time=lambda: time.time() - 86400)
    monkeypatch.setattr(sdk_auth, "time", clock)
    monkeypatch.setattr(our_auth, "time", clock)
    expired = _service_error(impl, lambda: impl.client(emulator).get_object(Bucket=emulator.bucket, Key="e"))
    assert expired.get_status_code() == 403
    assert expired.get_error_code() == "AccessDenied"


def test_temporary_credentials(emulator, impl):
    emulator.put("t", b"temporary")
    creds = emulator.create_temporary_credentials(expires_in=600)
    client = impl.client(emulator, SecretId=creds.secret_id, SecretKey=creds.secret_key, Token=creds.token)
    assert body_of(client.get_object(Bucket=emulator.bucket, Key="t")) == b"temporary"
    for token in (None, "wrong-token"):
        client = impl.client(emulator, SecretId=creds.secret_id, SecretKey=creds.secret_key, Token=token)
        denied = _service_error(impl, lambda client=client: client.get_object(
            Bucket=emulator.bucket, Key="t"))
        assert denied.get_error_code() == "AccessDenied"


def test_anonymous_access(emulator, impl):
    public = emulator.create_bucket(emulator.bucket.replace("-", "p-", 1), public_read=True)
    emulator.put_object(public, "pub", b"public")
    emulator.put("priv", b"private")
    anonymous = impl.CosS3Client(impl.CosConfig(Region=emulator.region, IP=emulator.host,
                                                Port=emulator.port, Scheme="http", Anonymous=True),
                                 retry=0)
    assert body_of(anonymous.get_object(Bucket=public, Key="pub")) == b"public"
    assert [c["Key"] for c in anonymous.list_objects(Bucket=public)["Contents"]] == ["pub"]
    denied = _service_error(impl, lambda: anonymous.get_object(Bucket=emulator.bucket, Key="priv"))
    assert denied.get_error_code() == "AccessDenied"


def test_presigned_download_url_works(emulator, impl):
    import urllib.request

    emulator.put("p q+r", b"presigned")
    client = impl.client(emulator)
    host = {"Host": f"{emulator.bucket}.cos.{emulator.region}.myqcloud.com"}
    url = client.get_presigned_download_url(Bucket=emulator.bucket, Key="p q+r", Headers=host)
    with urllib.request.urlopen(urllib.request.Request(url, headers=host), timeout=10) as got:
        assert got.read() == b"presigned"


# -- keys and listings -------------------------------------------------------------------------

ODD_KEYS = sorted(["sp ace", "plus+sign", "per%cent", "amp&lt", "中文/文件 名.txt", "tab\tkey",
                   "q?x=1#frag", "emoji😀", "a/./b", "a/../c", "dots...", "~t-_.~", "x/"])


def test_odd_keys_round_trip(emulator, impl):
    for key in ODD_KEYS:
        emulator.put(key, key.encode())
    client = impl.client(emulator)
    for key in ODD_KEYS:
        got = client.get_object(Bucket=emulator.bucket, Key=key, KeySimplifyCheck=False)
        assert body_of(got) == key.encode(), key
        assert client.head_object(Bucket=emulator.bucket, Key=key)["Content-Length"] == \
            str(len(key.encode()))
    # Both send "/name" as "name": one leading slash is not part of the key.
    assert body_of(client.get_object(Bucket=emulator.bucket, Key="/emoji😀")) == "emoji😀".encode()


def test_listings_same_as_sdk(emulator):
    for key in ODD_KEYS + ["d/x/1", "d/x/2", "d/y", "e"]:
        emulator.put(key, b"x")
    calls = [
        {},
        {"Delimiter": "/"},
        {"Prefix": "d/", "Delimiter": "/"},
        {"Prefix": "中文/"},
        {"MaxKeys": 3},
        {"MaxKeys": 3, "Marker": "d/x/1"},
        {"Delimiter": "/", "MaxKeys": 2, "Marker": "a/"},
        {"EncodingType": "url", "Prefix": "中文/"},
        {"Prefix": "absent/"},
    ]
    for args in calls:
        theirs = SDK.client(emulator).list_objects(Bucket=emulator.bucket, **args)
        ours = COSFAST.client(emulator).list_objects(Bucket=emulator.bucket, **args)
        assert ours == theirs, args
        assert list(ours) == list(theirs), args


def test_list_pages(emulator, impl):
    keys = sorted(f"k/{i:03d}" for i in range(25))
    for key in keys:
        emulator.put(key, b"x")
    client = impl.client(emulator)
    seen, marker = [], ""
    while True:
        page = client.list_objects(Bucket=emulator.bucket, Marker=marker, MaxKeys=10)
        assert isinstance(page["Contents"], list)
        seen += [c["Key"] for c in page["Contents"]]
        if page["IsTruncated"] == "false":
            break
        marker = page["NextMarker"]
    assert seen == keys
    one = client.list_objects(Bucket=emulator.bucket, Prefix="k/000")
    assert isinstance(one["Contents"], list) and len(one["Contents"]) == 1


# -- configurations ----------------------------------------------------------------------------


def test_domain_config(make_emulator, impl):
    server = make_emulator(default_bucket="examplebucket-1250000000")
    server.put_object("examplebucket-1250000000", "d/k", b"by domain")
    client = impl.CosS3Client(impl.CosConfig(
        Region=server.region, SecretId=server.secret_id, SecretKey=server.secret_key,
        Domain=f"{server.host}:{server.port}", Scheme="http"), retry=0)
    assert body_of(client.get_object(Bucket="examplebucket-1250000000", Key="d/k")) == b"by domain"


def test_https_with_a_test_ca(make_emulator, tls_files, impl):
    server = make_emulator(tls=(tls_files.certfile, tls_files.keyfile))
    bucket = server.create_bucket("tls-1250000000")
    server.put_object(bucket, "k", b"over tls")
    trusting = impl.client(server, VerifySSL=str(tls_files.ca_file))
    assert body_of(trusting.get_object(Bucket=bucket, Key="k")) == b"over tls"
    assert trusting.list_objects(Bucket=bucket)["Contents"][0]["Key"] == "k"
    # Verification is on by default: the test CA is not in the default bundle.
    with pytest.raises(impl.CosClientError):
        impl.client(server).head_object(Bucket=bucket, Key="k")
    unverified = impl.client(server, VerifySSL=False)
    assert unverified.head_object(Bucket=bucket, Key="k")["Content-Length"] == "8"
