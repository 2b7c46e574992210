"""The SDK's keyword arguments -> request headers and parameters, with checks.

``mapped`` is the SDK's ``cos_comm.mapped`` (same table, same error for an unknown name);
``split_object_kwargs`` then separates what ``get_object`` sends as query parameters
(``response-*``, ``versionId``) from headers, as the SDK's ``get_object`` does; and
``check_download_headers`` refuses values COS would reject or misread (bad Range, an
out-of-range TrafficLimit) before a request is made."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cosfast.cos_exception import CosClientError
from cosfast.transfer.response import parse_decimal

__all__ = ["MAPLIST", "mapped", "split_object_kwargs", "check_download_headers",
           "TRAFFIC_LIMIT_MIN", "TRAFFIC_LIMIT_MAX"]

MAPLIST = {
    "ContentLength": "Content-Length",
    "ContentMD5": "Content-MD5",
    "ContentType": "Content-Type",
    "CacheControl": "Cache-Control",
    "ContentDisposition": "Content-Disposition",
    "ContentEncoding": "Content-Encoding",
    "ContentLanguage": "Content-Language",
    "Expires": "Expires",
    "ResponseContentType": "response-content-type",
    "ResponseContentLanguage": "response-content-language",
    "ResponseExpires": "response-expires",
    "ResponseCacheControl": "response-cache-control",
    "ResponseContentDisposition": "response-content-disposition",
    "ResponseContentEncoding": "response-content-encoding",
    "Metadata": "Metadata",
    "ACL": "x-cos-acl",
    "Tagging": "x-cos-tagging",
    "GrantFullControl": "x-cos-grant-full-control",
    "GrantWrite": "x-cos-grant-write",
    "GrantRead": "x-cos-grant-read",
    "StorageClass": "x-cos-storage-class",
    "Range": "Range",
    "IfMatch": "If-Match",
    "IfNoneMatch": "If-None-Match",
    "IfModifiedSince": "If-Modified-Since",
    "IfUnmodifiedSince": "If-Unmodified-Since",
    "CopySourceIfMatch": "x-cos-copy-source-If-Match",
    "CopySourceIfNoneMatch": "x-cos-copy-source-If-None-Match",
    "CopySourceIfModifiedSince": "x-cos-copy-source-If-Modified-Since",
    "CopySourceIfUnmodifiedSince": "x-cos-copy-source-If-Unmodified-Since",
    "VersionId": "versionId",
    "ServerSideEncryption": "x-cos-server-side-encryption",
    "SSEKMSKeyId": "x-cos-server-side-encryption-cos-kms-key-id",
    "SSEKMSContext": "x-cos-server-side-encryption-context",
    "SSECustomerAlgorithm": "x-cos-server-side-encryption-customer-algorithm",
    "SSECustomerKey": "x-cos-server-side-encryption-customer-key",
    "SSECustomerKeyMD5": "x-cos-server-side-encryption-customer-key-MD5",
    "CopySourceSSECustomerAlgorithm": "x-cos-copy-source-server-side-encryption-customer-algorithm",
    "CopySourceSSECustomerKey": "x-cos-copy-source-server-side-encryption-customer-key",
    "CopySourceSSECustomerKeyMD5": "x-cos-copy-source-server-side-encryption-customer-key-MD5",
    "Referer": "Referer",
    "PicOperations": "Pic-Operations",
    "TrafficLimit": "x-cos-traffic-limit",
    "Accept": "Accept",
    "AcceptEncoding": "Accept-Encoding",
    "Callback": "x-cos-callback",
    "CallbackVar": "x-cos-callback-var",
}

#: COS's bounds for x-cos-traffic-limit, in bit/s (100 KB/s .. 100 MB/s).
TRAFFIC_LIMIT_MIN = 819200
TRAFFIC_LIMIT_MAX = 838860800

_RANGE_RE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")


def mapped(kwargs: Mapping) -> dict:
    """SDK argument names -> header names; Metadata's entries are sent as they are."""
    headers: dict = {}
    for name in kwargs:
        target = MAPLIST.get(name)
        if target is None:
            raise CosClientError("No Parameter Named " + name + " Please Check It")
        if name == "Metadata":
            metadata = kwargs[name]
            if not isinstance(metadata, Mapping):
                raise CosClientError("Metadata must be a dict of x-cos-meta-* headers")
            headers.update(metadata)
        else:
            headers[target] = kwargs[name]
    return headers


def split_object_kwargs(kwargs: Mapping) -> tuple:
    """(headers, params) for an object GET/HEAD: response-* and versionId are parameters."""
    headers = {}
    params = {}
    for name, value in mapped(kwargs).items():
        if name.startswith("response") or name == "versionId":
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise CosClientError(f"{name} must be a string, got {type(value).__name__}")
            params[name] = str(value)
        else:
            headers[name] = value
    return headers, params


def parse_range(value: Any) -> tuple:
    """``bytes=first-last`` / ``bytes=first-`` / ``bytes=-suffix`` -> (first, last) with
    None for an open end; anything else (several ranges, bad numbers) is refused."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        raise CosClientError(f"Range must be a string like 'bytes=0-99', got {type(value).__name__}")
    match = _RANGE_RE.match(value.strip())
    if not match or match.group(1) == match.group(2) == "":
        raise CosClientError(
            f"Range {value!r} is not a single byte range like 'bytes=0-99', 'bytes=100-' or 'bytes=-100'"
        )
    first = int(match.group(1)) if match.group(1) else None
    last = int(match.group(2)) if match.group(2) else None
    if first is not None and last is not None and last < first:
        raise CosClientError(f"Range {value!r} ends before it starts")
    return first, last


def check_traffic_limit(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (str, bytes, int)):
        raise CosClientError(f"TrafficLimit must be an integer (bit/s), got {type(value).__name__}")
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    bits = parse_decimal(text)
    if bits is None:
        raise CosClientError(f"TrafficLimit {value!r} is not an integer number of bit/s")
    if not TRAFFIC_LIMIT_MIN <= bits <= TRAFFIC_LIMIT_MAX:
        raise CosClientError(
            f"TrafficLimit {text} bit/s is outside COS's range "
            f"{TRAFFIC_LIMIT_MIN}..{TRAFFIC_LIMIT_MAX}"
        )


def check_download_headers(headers: Mapping) -> None:
    """Refuse a malformed Range or TrafficLimit before any request is sent."""
    for name, value in headers.items():
        lower = name.lower()
        if lower == "range":
            parse_range(value)
        elif lower == "x-cos-traffic-limit":
            check_traffic_limit(value)
