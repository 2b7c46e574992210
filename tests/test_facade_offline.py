"""Facade checks that need no server: kwargs mapping, argument checks, header parsing."""
from __future__ import annotations

import pytest
import qcloud_cos
from qcloud_cos import cos_comm

import cosfast
from cosfast import CosClientError
from cosfast.kwargs import MAPLIST, mapped, split_object_kwargs
from cosfast.request import PreparedRequest
from cosfast.transport import HeaderParser, parse_header_lines

# Nothing listens on port 1: a request that got that far would fail with a connection error,
# whose message differs from the argument errors asserted below.
CONF = {"Region": "ap-x", "SecretId": "AKIDid", "SecretKey": "key", "Scheme": "http",
        "IP": "127.0.0.1", "Port": 1}


@pytest.fixture
def client():
    return cosfast.CosS3Client(cosfast.CosConfig(**CONF), retry=0)


def test_maplist_is_the_sdks():
    assert MAPLIST == cos_comm.maplist


def test_unknown_kwarg_same_error_as_sdk(client):
    sdk = qcloud_cos.CosS3Client(qcloud_cos.CosConfig(**CONF), retry=0)
    with pytest.raises(qcloud_cos.CosClientError) as theirs:
        sdk.get_object("b-1", "k", NoSuchArg=1)
    with pytest.raises(CosClientError) as ours:
        client.get_object("b-1", "k", NoSuchArg=1)
    assert str(ours.value) == str(theirs.value) == "No Parameter Named NoSuchArg Please Check It"
    for call in (client.head_object, lambda b, k, **kw: client.list_objects(b, **kw)):
        with pytest.raises(CosClientError, match="No Parameter Named Bogus"):
            call("b-1", "k", Bogus="x")


def test_get_object_params_and_headers_split_like_sdk():
    headers, params = split_object_kwargs({
        "Range": "bytes=0-1", "VersionId": "v", "ResponseContentType": "text/plain",
        "TrafficLimit": 819200, "Metadata": {"x-cos-meta-a": "1"},
    })
    assert headers == {"Range": "bytes=0-1", "x-cos-traffic-limit": 819200, "x-cos-meta-a": "1"}
    assert params == {"versionId": "v", "response-content-type": "text/plain"}
    assert mapped({}) == {}


@pytest.mark.parametrize("key, message", [
    ("", "GetObject Key is invalid"),
    ("/", "GetObject Key is invalid"),
    ("a/..", "GetObject Key is invalid"),
    ("./.", "GetObject Key is invalid"),
    (None, "key is not string"),
    (12, "key is not string"),
])
def test_bad_keys(client, key, message):
    with pytest.raises(CosClientError, match=message):
        client.get_object("b-1", key)


def test_key_simplify_check_off_still_refuses_empty(client):
    with pytest.raises(CosClientError, match="Key is required not empty"):
        client.get_object("b-1", "", KeySimplifyCheck=False)


@pytest.mark.parametrize("bucket", ["", "bad_bucket", "-x", 5, None])
def test_bad_bucket(client, bucket):
    with pytest.raises(CosClientError, match="bucket"):
        client.get_object(bucket, "k")


@pytest.mark.parametrize("value", ["0-99", "bytes=5-1", "bytes=a-b", "bytes=0-1,3-4", "bytes=-",
                                   "items=0-1", 5, None, ["bytes=0-1"]])
def test_bad_range(client, value):
    with pytest.raises(CosClientError, match="Range"):
        client.get_object("b-1", "k", Range=value)


@pytest.mark.parametrize("value", [0, 819199, 838860801, "fast", -1, 1.5, None, True])
def test_bad_traffic_limit(client, value):
    with pytest.raises(CosClientError, match="TrafficLimit"):
        client.get_object("b-1", "k", TrafficLimit=value)


@pytest.mark.parametrize("kwargs, match", [
    ({"IfMatch": None}, "If-Match must be a string"),
    ({"IfMatch": 1.5}, "If-Match must be a string"),
    ({"IfMatch": "a\r\nX-Injected: 1"}, "line break"),
    ({"VersionId": ["v"]}, "versionId must be a string"),
    ({"ResponseContentType": {"a": 1}}, "response-content-type must be a string"),
    ({"Metadata": "x"}, "Metadata must be a dict"),
])
def test_wrong_types_are_clear_client_errors(client, kwargs, match):
    with pytest.raises(CosClientError, match=match):
        client.get_object("b-1", "k", **kwargs)


@pytest.mark.parametrize("args, match", [
    ({"Prefix": None}, "Prefix must be a string"),
    ({"MaxKeys": "many"}, "MaxKeys"),
    ({"MaxKeys": -1}, "MaxKeys"),
    ({"EncodingType": "base64"}, "EncodingType must be url"),
])
def test_list_objects_argument_checks(client, args, match):
    with pytest.raises(CosClientError, match=match):
        client.list_objects("b-1", **args)


def test_connection_refused_is_a_client_error_not_pycurl(client):
    with pytest.raises(CosClientError) as info:
        client.head_object("b-1", "k")
    assert "curl error 7" in str(info.value)
    assert "key" not in str(info.value).split("127.0.0.1")[0]


def test_header_parser_keeps_names_joins_repeats_and_restarts():
    lines = [b"HTTP/1.1 100 Continue\r\n", b"\r\n",
             b"HTTP/1.1 200 OK\r\n", b"ETag: \"e\"\r\n", b"x-cos-meta-Foo: 1\r\n",
             b"X-COS-META-foo: 2\r\n", b"X-Folded: a\r\n", b"  b\r\n",
             b"x-cos-meta-latin: \xe9\r\n", b"\r\n"]
    parser = HeaderParser()
    for line in lines:
        parser.feed(line)
    assert parser.complete and parser.status == 200
    assert parser.headers == {"ETag": '"e"', "x-cos-meta-Foo": "1, 2", "X-Folded": "a b",
                              "x-cos-meta-latin": "\xe9"}
    assert parser.get("etag") == '"e"' and parser.get("X-COS-META-FOO") == "1, 2"
    assert parse_header_lines(lines) == parser.headers


def test_header_lines_render_empty_values_and_redact_repr():
    request = PreparedRequest("GET", "http://h/k", {"If-Match": b"", "Range": b"bytes=0-1",
                                                    "Authorization": b"q-sign-algorithm=sha1&x"})
    assert request.header_lines() == [b"If-Match;", b"Range: bytes=0-1",
                                      b"Authorization: q-sign-algorithm=sha1&x"]
    assert "q-sign" not in repr(request)
