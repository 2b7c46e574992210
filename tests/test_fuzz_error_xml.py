"""Fuzzing the error-document parsers: cos_exception's digest functions, CosServiceError's
accessors and errors.service_error. Whatever a server sends, the result is a CosServiceError
whose accessors answer; nothing else is raised."""
from __future__ import annotations

import pickle

from fuzz_strategies import FUZZ, any_document, charsets, header_values, json_values
from hypothesis import given
from hypothesis import strategies as st

from cosfast.cos_exception import (
    INVALID_MESSAGE,
    CosServiceError,
    digest_json,
    digest_xml,
    digest_xml_or_json,
)
from cosfast.errors import service_error

FIELDS = {"code", "message", "resource", "requestid", "traceid"}


@FUZZ
@given(any_document)
def test_digest_xml_gives_the_fields_or_the_sdks_invalid_message(data):
    digest = digest_xml(data)
    if digest != INVALID_MESSAGE:
        assert isinstance(digest, dict) and set(digest) <= FIELDS and "traceid" in digest
        assert all(isinstance(value, str) for value in digest.values())


@FUZZ
@given(st.one_of(any_document, json_values.map(repr)))
def test_digest_json_and_the_fallback_never_raise(data):
    digest_json(data)
    digest_xml_or_json(data)


def _accessors_answer(error: CosServiceError) -> None:
    for accessor in (error.get_error_code, error.get_error_msg, error.get_resource_location,
                     error.get_trace_id, error.get_request_id, error.get_digest_msg,
                     error.get_origin_msg, error.get_status_code):
        accessor()
    str(error)
    repr(error)
    copy = pickle.loads(pickle.dumps(error))
    assert copy.get_status_code() == error.get_status_code()
    assert copy.get_error_code() == error.get_error_code()


@FUZZ
@given(st.sampled_from(["GET", "HEAD"]), st.integers(100, 999),
       st.dictionaries(st.sampled_from(["Content-Type", "x-cos-error-code", "x-cos-request-id",
                                        "x-cos-trace-id", "Content-Length", "Other"]),
                       header_values, max_size=5),
       charsets, st.one_of(any_document.map(lambda d: d.encode("utf-8", "surrogatepass")
                                            if isinstance(d, str) else d)))
def test_service_error_builds_an_sdk_exception_from_any_response(method, status, headers, charset, body):
    if "Content-Type" in headers and charset:
        headers["Content-Type"] = f"application/xml; charset={charset}"
    error = service_error(method, "https://b-1.cos.ap-x.myqcloud.com/k", status, headers, body)
    assert isinstance(error, CosServiceError)
    assert error.get_status_code() == status
    _accessors_answer(error)


@FUZZ
@given(st.sampled_from(["GET", "HEAD"]),
       st.one_of(any_document, st.dictionaries(st.text(max_size=10), json_values, max_size=5)),
       st.integers(0, 999))
def test_cos_service_error_accepts_any_message(method, message, status):
    _accessors_answer(CosServiceError(method, message, status))
