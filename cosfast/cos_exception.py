"""The SDK's exceptions: ``CosClientError`` and ``CosServiceError``.

Same classes, constructor and accessors as ``qcloud_cos.cos_exception`` so that ``except``
clauses and accessor calls in SDK scripts keep working. Two deliberate differences, both
where the SDK breaks:

- error XML is parsed with ``xml.etree`` (expat), and a document missing some fields still
  yields a dict with the fields it has (the SDK gives up on the whole document);
- accessors never raise ``KeyError``: a field the server did not send reads ``"Unknown"``
  (the SDK raises ``KeyError`` for, e.g., a HEAD 404 without ``x-cos-trace-id``).
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any, Union

__all__ = [
    "CosException",
    "CosClientError",
    "CosServiceError",
    "digest_xml",
    "digest_json",
    "digest_xml_or_json",
]

INVALID_MESSAGE = "Response Error Msg Is INVALID"
UNKNOWN = "Unknown"

# COS error XML element -> key in the digest dict (the SDK's names).
_DIGEST_FIELDS = {
    "Code": "code",
    "Message": "message",
    "Resource": "resource",
    "RequestId": "requestid",
    "TraceId": "traceid",
}


class CosException(Exception):
    def __init__(self, message: Any) -> None:
        Exception.__init__(self, message)
        self._message = message

    def __str__(self) -> str:
        return str(self._message)


def _local_name(tag: str) -> str:
    """``{namespace}Code`` -> ``Code``: the SDK matches tag names whatever the namespace."""
    return tag.rpartition("}")[2] if tag.startswith("{") else tag


def digest_xml(data: Union[str, bytes]) -> Union[dict, str]:
    """Pick Code, Message, Resource, RequestId and TraceId out of a COS error document.

    Each is the first descendant of the root with that name, as the SDK's
    ``getElementsByTagName`` finds it. A document that is not XML or has none of the fields
    gives the SDK's ``"Response Error Msg Is INVALID"``; missing fields are left out, except
    ``traceid``, which the SDK always fills (``"Unknown"``)."""
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, TypeError, ValueError):
        return INVALID_MESSAGE
    msg: dict = {}
    for element in root.iter():
        if element is root:
            continue
        key = _DIGEST_FIELDS.get(_local_name(element.tag))
        if key is not None and key not in msg and element.text:
            msg[key] = element.text
    if not msg:
        return INVALID_MESSAGE
    msg.setdefault("traceid", UNKNOWN)
    return msg


def digest_json(data: Union[str, bytes]) -> Any:
    try:
        return json.loads(data)
    except (TypeError, ValueError):
        return INVALID_MESSAGE


def digest_xml_or_json(data: Union[str, bytes]) -> Any:
    msg = digest_xml(data)
    if isinstance(msg, dict):
        return msg
    return digest_json(data)


class CosClientError(CosException):
    """An error on the client side: bad input, timeout, connection failure."""

    def __init__(self, message: Any) -> None:
        CosException.__init__(self, message)


class CosServiceError(CosException):
    """An error status from COS, with the fields of its error document.

    ``message`` is the response body (XML or JSON text), or a mapping already digested
    (the SDK passes a dict for a HEAD 404, and the response headers when the body is empty).
    """

    def __init__(self, method: str, message: Any, status_code: int) -> None:
        CosException.__init__(self, message)
        self._method = method
        if isinstance(message, Mapping):
            self._origin_msg = ""
            self._digest_msg = message
        else:
            self._origin_msg = message
            self._digest_msg = digest_xml_or_json(message)
        self._status_code = status_code

    def __str__(self) -> str:
        return str(self._digest_msg)

    def __reduce__(self) -> tuple:
        # Exception's default pickling replays args, which lack method and status code;
        # errors must survive crossing a process boundary (multiprocessing pools).
        return (type(self), (self._method, self._message, self._status_code))

    def _field(self, key: str) -> Any:
        if isinstance(self._digest_msg, Mapping):
            return self._digest_msg.get(key, UNKNOWN)
        return UNKNOWN

    def get_origin_msg(self) -> Any:
        """The error body as the server sent it ('' when the error came from headers)."""
        return self._origin_msg

    def get_digest_msg(self) -> Any:
        """The error as a dict (code, message, resource, requestid, traceid), or a string."""
        return self._digest_msg

    def get_status_code(self) -> int:
        """The HTTP status code."""
        return self._status_code

    def get_error_code(self) -> Any:
        """COS's error code, e.g. ``NoSuchKey``; ``"Unknown"`` when the server sent none."""
        return self._field("code")

    def get_error_msg(self) -> Any:
        return self._field("message")

    def get_resource_location(self) -> Any:
        return self._field("resource")

    def get_trace_id(self) -> Any:
        return self._field("traceid")

    def get_request_id(self) -> Any:
        return self._field("requestid")
