"""COS request signing (``q-sign-algorithm=sha1``), byte for byte the SDK's ``CosS3Auth``.

What is signed: the lowercased method; the raw key path (not URL-encoded); the request
parameters and the signable headers, names URL-encoded and lowercased, values URL-encoded
(space as ``%20``, ``/`` encoded), sorted; the key time window ``now-60;now+expire``.
Nothing here logs: the signature and the key it is derived from are secrets."""
from __future__ import annotations

import functools
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import quote

from cosfast._comm import sign_path, to_bytes, to_str

__all__ = ["SignInput", "authorization", "canonical_headers", "canonical_params", "sign", "signable_headers"]

# Headers the SDK signs besides x-cos-* and x-ci-*.
_SIGNED_HEADERS = frozenset({
    "cache-control", "content-disposition", "content-encoding", "content-type",
    "content-md5", "content-length", "expect", "expires", "host", "if-match",
    "if-modified-since", "if-none-match", "if-unmodified-since", "origin", "range",
    "transfer-encoding", "pic-operations",
})

#: Requests the SDK sends are signed for 10000 s; presigned URLs default to 300 s.
REQUEST_EXPIRE = 10000


def signable_headers(headers: Mapping) -> dict:
    """The headers that go into the signature (the SDK's ``filter_headers``)."""
    out = {}
    for name in headers:
        lower = name.lower()
        if lower in _SIGNED_HEADERS or lower.startswith(("x-cos-", "x-ci-")):
            out[name] = headers[name]
    return out


# Header names, the host, the user agent and most values repeat from request to request; a batch
# of small objects signs thousands of requests a second, and quoting was a fifth of signing.
def _quote(value: Any) -> str:
    return quote(to_bytes(to_str(value)), "-_.~")


_quote_cached = functools.lru_cache(maxsize=4096)(_quote)


def _encode(value: Any) -> str:
    try:
        return _quote_cached(value)
    except TypeError:  # an unhashable value: quote it without the cache
        return _quote(value)


# The signing key depends only on the secret and the key time, which changes once a second:
# one HMAC saved per request in between. What is kept is the HMAC-SHA1 of that key with its
# padded key already hashed in (RFC 2104: H(K^opad, H(K^ipad, m))): finishing it for one
# message takes two hash copies, less than half of what hmac.digest spends per call.
@functools.lru_cache(maxsize=4)
def _keyed_sha1(secret_key: str, sign_time: str) -> tuple:
    sign_key = hmac.digest(to_bytes(secret_key), to_bytes(sign_time), "sha1").hex().encode("ascii")
    block = sign_key.ljust(64, b"\0")  # a hex SHA-1 (40 bytes) is shorter than SHA-1's block
    return (hashlib.sha1(bytes(b ^ 0x36 for b in block)), hashlib.sha1(bytes(b ^ 0x5C for b in block)))


def _hmac_sha1_hex(secret_key: str, sign_time: str, message: bytes) -> str:
    """hmac.new(the signing key, message, sha1).hexdigest()."""
    inner_start, outer_start = _keyed_sha1(secret_key, sign_time)
    inner = inner_start.copy()
    inner.update(message)
    outer = outer_start.copy()
    outer.update(inner.digest())
    return outer.hexdigest()


# For callers that build canonical pairs themselves (cosfast.request.ObjectGetTemplate).
encode_for_signature = _encode


def _canonical(pairs: Mapping) -> dict:
    return {_encode(k).lower(): _encode(v) for k, v in pairs.items()}


@dataclass(frozen=True)
class SignInput:
    """One request as the signer sees it.

    ``headers`` are those the request sends (any case); ``url_host`` is the host name of
    the URL, signed as ``host`` when ``sign_host`` and no Host header is among ``headers``."""

    method: str
    key: Optional[str]
    headers: Mapping = field(default_factory=dict)
    params: Mapping = field(default_factory=dict)
    url_host: Optional[str] = None
    expire: int = REQUEST_EXPIRE
    sign_host: bool = True
    sign_params: bool = True


def canonical_headers(headers: Mapping, url_host: Optional[str], sign_host: bool) -> dict:
    """The signed headers of a request as the signature lists them: names lowercased and
    encoded, values encoded; ``host`` from ``url_host`` when signed and not sent as a header."""
    signed = signable_headers(headers)
    if sign_host and url_host is not None and not any(name.lower() == "host" for name in signed):
        signed["host"] = url_host
    return _canonical(signed)


def canonical_params(params: Mapping, sign_params: bool) -> dict:
    return _canonical(params) if sign_params else {}


def joined(pairs: Mapping) -> str:
    """Canonical pairs as the signature lists them: ``k=v`` sorted, joined with ``&``."""
    return "&".join(f"{k}={v}" for k, v in sorted(pairs.items()))


def sign(method: str, key: Optional[str], params: Mapping, headers: Mapping, secret_id: str, secret_key: str,
         expire: int = REQUEST_EXPIRE, now: Optional[int] = None) -> str:
    """The ``Authorization`` value from canonical ``params`` and ``headers`` (see
    ``canonical_headers``/``canonical_params``), signed at ``now`` (default: the clock)."""
    return sign_joined(method, key, joined(params), ";".join(sorted(params)), joined(headers),
                       ";".join(sorted(headers)), secret_id, secret_key, expire, now)


def sign_joined(method: str, key: Optional[str], params_joined: str, param_list: str, headers_joined: str,
                header_list: str, secret_id: str, secret_key: str, expire: int = REQUEST_EXPIRE,
                now: Optional[int] = None) -> str:
    """``sign`` from the canonical parameters and headers already joined (``joined``) and their
    names' lists (sorted, joined with ``;``): for callers that sign many alike requests."""
    format_str = f"{method.lower()}\n{sign_path(key)}\n{params_joined}\n{headers_joined}\n"
    start = int(time.time()) if now is None else now
    sign_time = f"{start - 60};{start + expire}"
    str_to_sign = f"sha1\n{sign_time}\n{hashlib.sha1(to_bytes(format_str)).hexdigest()}\n"
    signature = _hmac_sha1_hex(secret_key, sign_time, to_bytes(str_to_sign))
    return (
        f"q-sign-algorithm=sha1&q-ak={secret_id}&q-sign-time={sign_time}"
        f"&q-key-time={sign_time}&q-header-list={header_list}"
        f"&q-url-param-list={param_list}&q-signature={signature}"
    )


def authorization(inp: SignInput, secret_id: str, secret_key: str,
                  now: Optional[int] = None) -> str:
    """The ``Authorization`` value for ``inp``, signed at ``now`` (default: the clock)."""
    return sign(inp.method, inp.key, canonical_params(inp.params, inp.sign_params),
                canonical_headers(inp.headers, inp.url_host, inp.sign_host), secret_id, secret_key,
                inp.expire, now)
