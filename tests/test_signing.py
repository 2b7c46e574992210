"""Signatures byte for byte against the SDK's own signer, with the clock frozen.

The SDK is run up to the wire (tests/sdk_capture.py) and its Authorization, URL and signed
headers are compared with the request cosfast prepares for the same call."""
from __future__ import annotations

import types

import pytest
import qcloud_cos
from qcloud_cos import cos_auth as sdk_auth

import cosfast
from cosfast import auth as our_auth
from tests.sdk_capture import CaptureSession

FROZEN = 1_700_000_000
BUCKET = "examplebucket-1250000000"


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    clock = types.SimpleNamespace(time=lambda: float(FROZEN))
    monkeypatch.setattr(sdk_auth, "time", clock)
    monkeypatch.setattr(our_auth, "time", clock)


def _pair(**conf):
    conf = {"Region": "ap-guangzhou", "SecretId": "AKIDexampleid", "SecretKey": "exampleKey+/=", **conf}
    session = CaptureSession()
    sdk = qcloud_cos.CosS3Client(qcloud_cos.CosConfig(**conf), retry=0, session=session)
    ours = cosfast.CosS3Client(cosfast.CosConfig(**conf))
    return sdk, session, ours


def _sdk_request(session, call):
    with pytest.raises(qcloud_cos.CosClientError):
        call()
    return session.requests[-1]


def _prepared(ours, method, key, headers, params):
    """The request cosfast's facade sends for one object (cosfast.request.prepare_request)."""
    url = ours._conf.uri(bucket=BUCKET, path=key)
    return cosfast.request.prepare_request(ours._conf, ours._spec(method, BUCKET, key, headers, params, url))


def _compare(sdk_req, ours_req):
    assert ours_req.url == sdk_req.url
    sdk_headers = {k.lower(): (v.decode() if isinstance(v, bytes) else v)
                   for k, v in sdk_req.headers.items()}
    our_headers = {k.lower(): v.decode() for k, v in ours_req.headers.items()}
    assert our_headers["authorization"] == sdk_headers["authorization"]
    # Every header the SDK signed is sent by cosfast with the same value.
    signed = sdk_headers["authorization"].split("q-header-list=")[1].split("&")[0]
    for name in filter(None, signed.split(";")):
        if name != "host":
            assert our_headers[name] == sdk_headers[name], name


KEYS = [
    "simple.txt",
    "dir/子目录/文件 名.txt",
    "a+b c+d",
    "/leading/slash",
    "x/./y/../z",
    "sp ace/plus+/pct%20/amp&/eq=/q?/hash#",
    "emoji-😀.bin",
    "~tilde_-.keep",
    "trailing/",
]

GET_KWARGS = [
    {},
    {"Range": "bytes=0-99"},
    {"Range": "bytes=100-", "IfMatch": '"9a4802d5c99dafe1c04da0a8e7e166bf"'},
    {"IfNoneMatch": '"abc"', "IfModifiedSince": "Wed, 28 Oct 2014 20:30:00 GMT"},
    {"IfUnmodifiedSince": "Wed, 28 Oct 2014 20:30:00 GMT"},
    {"ResponseContentDisposition": 'attachment; filename="a b+c.txt"',
     "ResponseContentType": "text/plain; charset=utf-8", "ResponseCacheControl": "no-cache",
     "ResponseContentLanguage": "zh-CN", "ResponseExpires": "Wed, 28 Oct 2025 20:30:00 GMT",
     "ResponseContentEncoding": "gzip"},
    {"VersionId": "MTg0NDUxODMzMTMwMDM2Njc1ODA"},
    {"TrafficLimit": "819200", "Range": "bytes=-500"},
    {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "a2V5",
     "SSECustomerKeyMD5": "bWQ1"},
]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("kwargs", GET_KWARGS, ids=lambda k: ",".join(k) or "plain")
def test_get_object_signature(key, kwargs):
    sdk, session, ours = _pair(Token="session-token-value")
    sdk_req = _sdk_request(session, lambda: sdk.get_object(BUCKET, key, KeySimplifyCheck=False, **kwargs))
    headers, params = cosfast.kwargs.split_object_kwargs(kwargs)
    _compare(sdk_req, _prepared(ours, "GET", key, headers, params))


@pytest.mark.parametrize("conf", [
    {},
    {"Token": "tok"},
    {"IP": "127.0.0.1", "Port": 9000},
    {"Domain": "files.example.com"},
    {"SignHost": False},
    {"SignParams": False},
    {"Scheme": "http", "EnableOldDomain": False},
    {"KeepAlive": False},
], ids=repr)
def test_head_object_signature_across_configs(conf):
    sdk, session, ours = _pair(**conf)
    kwargs = {"VersionId": "v1", "IfMatch": '"e"'}
    sdk_req = _sdk_request(session, lambda: sdk.head_object(BUCKET, "k ey+/文件", **kwargs))
    headers, params = cosfast.kwargs.split_object_kwargs(kwargs)
    _compare(sdk_req, _prepared(ours, "HEAD", "k ey+/文件", headers, params))


@pytest.mark.parametrize("args", [
    {},
    {"Prefix": "dir/子", "Delimiter": "/", "Marker": "dir/a b", "MaxKeys": 10},
    {"Prefix": "a+b", "EncodingType": "url"},
])
def test_list_objects_signature(args):
    sdk, session, ours = _pair(Token="t")
    sdk_req = _sdk_request(session, lambda: sdk.list_objects(BUCKET, **args))
    decode_args = dict(args)
    decode_args.pop("EncodingType", None)
    params = {"prefix": args.get("Prefix", ""), "delimiter": args.get("Delimiter", ""),
              "marker": args.get("Marker", ""), "max-keys": str(args.get("MaxKeys", 1000)),
              "encoding-type": "url"}
    url = ours._conf.uri(bucket=BUCKET)
    prepared = cosfast.request.prepare_request(
        ours._conf, cosfast.request.RequestSpec(method="GET", url=url, params=params))
    _compare(sdk_req, prepared)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("extra", [
    {},
    {"Expired": 3600},
    {"Params": {"response-content-disposition": "attachment; filename=x y", "versionId": "v"}},
    {"Headers": {"Range": "bytes=0-9", "If-Match": '"e"', "User-Agent": "not-signed"}},
    {"SignHost": False},
], ids=repr)
def test_presigned_download_url(key, extra):
    sdk, _session, ours = _pair()
    assert ours.get_presigned_download_url(BUCKET, key, **extra) == \
        sdk.get_presigned_download_url(BUCKET, key, **extra)
    assert ours.get_auth("GET", BUCKET, key, **extra) == sdk.get_auth("GET", BUCKET, key, **extra)


def test_presigned_url_other_methods_and_ip():
    sdk, _session, ours = _pair(IP="127.0.0.1", Port=8080)
    for method in ("GET", "HEAD", "PUT"):
        assert ours.get_presigned_url(BUCKET, "a/b c", method) == \
            sdk.get_presigned_url(BUCKET, "a/b c", method)


def test_signature_direct_vector():
    # A hand-checkable vector: the documented COS example shape.
    value = our_auth.authorization(
        our_auth.SignInput(method="GET", key="exampleobject", headers={"Host": "h"},
                           params={}, expire=3600),
        "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q", "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz", now=1557989151,
    )
    sdk_conf = qcloud_cos.CosConfig(Region="ap-beijing", SecretId="AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q",
                                    SecretKey="BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz")
    import requests

    sdk_auth.time = types.SimpleNamespace(time=lambda: 1557989151.0)
    req = requests.Request("GET", "https://h/exampleobject", headers={"Host": "h"})
    assert sdk_auth.CosS3Auth(sdk_conf, "exampleobject", {}, 3600)(req).headers["Authorization"] == value
    assert value.startswith("q-sign-algorithm=sha1&q-ak=AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q"
                            "&q-sign-time=1557989091;1557992751&q-key-time=1557989091;1557992751"
                            "&q-header-list=host&q-url-param-list=&q-signature=")


def test_prepared_request_repr_hides_secrets():
    _sdk, _session, ours = _pair(Token="THE-TOKEN")
    prepared = _prepared(ours, "GET", "k", {}, {})
    text = repr(prepared)
    assert "THE-TOKEN" not in text and "q-signature" not in text
    assert "<redacted>" in text


# The download engine's GETs come from ObjectGetTemplate, which does the per-batch work once:
# each request must still be exactly what prepare_request (checked against the SDK above) renders.
TEMPLATE_CONFIGS = [
    {},
    {"Token": "tok"},
    {"IP": "127.0.0.1", "Port": 9000},
    {"IP": "127.0.0.1", "Domain": "files.example.com"},
    {"Domain": "files.example.com"},
    {"SignHost": False},
    {"SignParams": False},
    {"Scheme": "http", "UA": "my-agent/1.0"},
    {"KeepAlive": False},
    {"Anonymous": True},
]


@pytest.mark.parametrize("conf", TEMPLATE_CONFIGS, ids=repr)
@pytest.mark.parametrize("kwargs", [
    {},
    {"TrafficLimit": "819200", "ResponseContentType": "text/plain; charset=utf-8"},
    {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "a2V5", "SSECustomerKeyMD5": "bWQ1",
     "VersionId": "MTg0NDUxODMzMTMwMDM2Njc1ODA"},
], ids=lambda k: ",".join(k) or "plain")
def test_object_get_template_renders_what_prepare_request_does(conf, kwargs):
    _sdk, _session, ours = _pair(**conf)
    headers, params = cosfast.kwargs.split_object_kwargs(kwargs)
    template = cosfast.request.ObjectGetTemplate(ours._conf, BUCKET, headers, params)
    for key in KEYS:
        for per_request in ({"If-Match": '"9a4802d5c99dafe1c04da0a8e7e166bf"'},
                            {"If-Match": '"e 1+/"', "Range": "bytes=100-262143"}):
            url, lines = template.render(key, per_request)
            expected = _prepared(ours, "GET", key, {**headers, **per_request}, params)
            assert url == expected.url
            assert lines == expected.header_lines()


def test_object_get_template_follows_a_rotating_credential():
    class Rotating:
        generation = 1

        @property
        def secret_id(self):
            return f"AKIDrot{self.generation}"

        @property
        def secret_key(self):
            return f"key{self.generation}"

        @property
        def token(self):
            return f"token{self.generation}"

    credential = Rotating()
    config = cosfast.CosConfig(Region="ap-guangzhou", CredentialInstance=credential)
    template = cosfast.request.ObjectGetTemplate(config, BUCKET, {}, {})
    _url, first = template.render("k", {"If-Match": '"e"'})
    credential.generation = 2
    _url, second = template.render("k", {"If-Match": '"e"'})
    assert b"x-cos-security-token: token1" in first and b"x-cos-security-token: token2" in second
    assert any(b"q-ak=AKIDrot2&" in line for line in second)
    expected = cosfast.request.prepare_request(config, cosfast.request.RequestSpec(
        method="GET", url=config.uri(bucket=BUCKET, path="k"), key="k", headers={"If-Match": '"e"'}))
    assert second == expected.header_lines()


def test_object_get_template_refuses_an_empty_key():
    _sdk, _session, ours = _pair()
    with pytest.raises(cosfast.CosClientError, match="Key is required not empty"):
        cosfast.request.ObjectGetTemplate(ours._conf, BUCKET, {}, {}).render("", {})
