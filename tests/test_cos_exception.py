"""cosfast's exceptions against the SDK's on the same inputs; robustness where the SDK breaks."""
from __future__ import annotations

import pickle

import pytest
from qcloud_cos import cos_exception as sdk_exc

import cosfast
from cosfast import cos_exception as our_exc

ACCESSORS = [
    "get_origin_msg",
    "get_digest_msg",
    "get_status_code",
    "get_error_code",
    "get_error_msg",
    "get_resource_location",
    "get_trace_id",
    "get_request_id",
]

FULL = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>NoSuchKey</Code>\n'
    "  <Message>The specified key does not exist.</Message>\n"
    "  <Resource>examplebucket-1250000000.cos.ap-beijing.myqcloud.com/ü ñ.txt</Resource>\n"
    "  <RequestId>NjQ1ZGQ1ZDRfMjBhYjY</RequestId>\n  <TraceId>OGVmYzZiMmQzYjA2</TraceId>\n"
    "</Error>"
)
NO_TRACE = (
    "<Error><Code>AccessDenied</Code><Message>Access Denied.</Message>"
    "<Resource>/k</Resource><RequestId>rid</RequestId></Error>"
)
EMPTY_TRACE = NO_TRACE.replace("</Error>", "<TraceId></TraceId></Error>")
NAMESPACED = '<Error xmlns="http://example.com/ns">' + NO_TRACE[len("<Error>"):]
JSON_BODY = '{"code": "InvalidArgument", "message": "m", "resource": "r", "requestid": "q", "traceid": "t"}'

# Bodies on which the SDK itself works: every accessor must agree with it exactly.
AGREED = [FULL, NO_TRACE, EMPTY_TRACE, NAMESPACED, JSON_BODY, "not xml at all", "", "<a><b/></a>"]


@pytest.mark.parametrize("body", AGREED)
@pytest.mark.parametrize("status", [403, 404, 503])
def test_accessors_match_sdk(body, status):
    ours = our_exc.CosServiceError("GET", body, status)
    theirs = sdk_exc.CosServiceError("GET", body, status)
    for name in ACCESSORS:
        assert getattr(ours, name)() == getattr(theirs, name)(), name
    assert str(ours) == str(theirs)


def test_full_document_fields():
    err = our_exc.CosServiceError("GET", FULL, 404)
    assert err.get_error_code() == "NoSuchKey"
    assert err.get_resource_location().endswith("/ü ñ.txt")
    assert err.get_trace_id() == "OGVmYzZiMmQzYjA2"
    assert err.get_request_id() == "NjQ1ZGQ1ZDRfMjBhYjY"
    assert err.get_origin_msg() == FULL


def test_head_404_dict_without_trace_id_never_keyerror():
    # The SDK builds this dict for a HEAD 404 and raises KeyError from get_trace_id when the
    # server sent no x-cos-trace-id; cosfast reads "Unknown".
    info = {"code": "NoSuchResource", "message": "The Resource You Head Not Exist", "resource": "u"}
    with pytest.raises(KeyError):
        sdk_exc.CosServiceError("HEAD", info, 404).get_trace_id()
    err = our_exc.CosServiceError("HEAD", info, 404)
    assert err.get_trace_id() == "Unknown"
    assert err.get_request_id() == "Unknown"
    assert err.get_error_code() == "NoSuchResource"
    assert err.get_origin_msg() == ""
    assert err.get_digest_msg() is info


@pytest.mark.parametrize(
    "body",
    [
        "<Error><Code>SlowDown</Code></Error>",  # the SDK drops the whole document
        "<Error><Code></Code><Message>m</Message></Error>",
        '{"unexpected": 1}',  # JSON without the fields: KeyError in the SDK
        "[1, 2]",
        "<Error><Code>X</Code>",  # truncated
        b"<Error><Code>B</Code></Error>",
    ],
)
def test_partial_or_odd_bodies_never_raise(body):
    err = our_exc.CosServiceError("GET", body, 500)
    for name in ACCESSORS:
        getattr(err, name)()
    str(err)


def test_partial_xml_keeps_the_fields_it_has():
    err = our_exc.CosServiceError("GET", "<Error><Code>SlowDown</Code></Error>", 503)
    assert err.get_error_code() == "SlowDown"
    assert err.get_error_msg() == "Unknown"
    assert err.get_trace_id() == "Unknown"


def test_no_eval_on_hostile_entity_expansion():
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {c} "&{p};&{p};&{p};&{p};&{p};&{p};&{p};&{p};&{p};&{p};">'
                  for p, c in zip("abcdefgh", "bcdefghi"))
        + "]><Error><Code>&i;</Code></Error>"
    )
    err = our_exc.CosServiceError("GET", bomb, 500)
    assert err.get_error_code() == "Unknown"  # expat's amplification guard refuses it


def test_client_error_is_cos_exception_with_message():
    err = our_exc.CosClientError("bad thing")
    assert isinstance(err, our_exc.CosException)
    assert str(err) == "bad thing"


def test_top_level_exports_are_the_same_classes():
    assert cosfast.CosClientError is our_exc.CosClientError
    assert cosfast.CosServiceError is our_exc.CosServiceError


def test_errors_pickle():
    err = pickle.loads(pickle.dumps(our_exc.CosServiceError("GET", FULL, 404)))
    assert err.get_status_code() == 404 and err.get_error_code() == "NoSuchKey"
    assert str(pickle.loads(pickle.dumps(our_exc.CosClientError("x")))) == "x"
