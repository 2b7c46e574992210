"""COS error codes the emulator answers with, and COS's error XML.

The SDK (``qcloud_cos.cos_exception.digest_xml``) reads ``Code``, ``Message``, ``Resource``,
``RequestId`` and ``TraceId`` from an ``<Error>`` document; COS also repeats the request id in
the ``x-cos-request-id`` header and the trace id in ``x-cos-trace-id``.
"""

from __future__ import annotations

import base64
import itertools
import os
import time
from xml.sax.saxutils import escape

# code -> (HTTP status, COS's message)
_CATALOGUE: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied."),
    "SignatureDoesNotMatch": (
        403,
        "The Signature you specified is invalid.",
    ),
    "InvalidAccessKeyId": (
        403,
        "The Access Key Id you provided does not exist in our records.",
    ),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchBucket": (404, "The specified bucket does not exist."),
    "NoSuchVersion": (404, "The specified version does not exist."),
    "PreconditionFailed": (412, "At least one of the preconditions you specified did not hold."),
    "InvalidRange": (416, "The requested range is not satisfiable."),
    "InvalidArgument": (400, "Invalid Argument."),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "BadDigest": (400, "The Content-MD5 you specified did not match what was received."),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid."),
    "BucketAlreadyOwnedByYou": (
        409,
        "Your previous request to create the named bucket succeeded and you already own it.",
    ),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "NotImplemented": (501, "The emulator does not implement this operation."),
    "SlowDown": (503, "Please reduce your request rate."),
    "ServiceUnavailable": (503, "Please reduce your request rate."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
}

_STATUS_DEFAULT_CODE = {500: "InternalError", 503: "SlowDown"}


class CosError(Exception):
    """An error answer: raised anywhere in a handler, rendered once as COS's error XML."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        known_status, known_message = _CATALOGUE.get(code, (500, code))
        self.code = code
        self.status = status if status is not None else known_status
        self.message = message if message is not None else known_message
        self.headers = dict(headers or {})
        super().__init__(f"{self.status} {code}: {self.message}")


def code_for_status(status: int) -> str:
    """COS's usual code for a bare 5xx status (used by the ``status`` fault)."""
    return _STATUS_DEFAULT_CODE.get(status, "InternalError" if status >= 500 else "InvalidArgument")


_sequence = itertools.count(1)
_boot = os.urandom(4).hex()


def new_request_id() -> str:
    """An id shaped like COS's (base64 of a time/host/sequence string), unique per process."""
    raw = f"{int(time.time()):x}_{_boot}_{next(_sequence):x}_{os.urandom(3).hex()}"
    return base64.b64encode(raw.encode()).decode()


def new_trace_id() -> str:
    return base64.b64encode(os.urandom(48)).decode()


def error_xml(error: CosError, *, resource: str, request_id: str, trace_id: str) -> bytes:
    return (
        "<?xml version='1.0' encoding='utf-8' ?>\n"
        "<Error>\n"
        f"\t<Code>{escape(error.code)}</Code>\n"
        f"\t<Message>{escape(error.message)}</Message>\n"
        f"\t<Resource>{escape(resource)}</Resource>\n"
        f"\t<RequestId>{escape(request_id)}</RequestId>\n"
        f"\t<TraceId>{escape(trace_id)}</TraceId>\n"
        "</Error>\n"
    ).encode()
