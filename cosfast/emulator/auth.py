"""Verifies COS request signatures (``q-sign-algorithm=sha1``), in a header or a presigned URL.

What the official SDK signs (``qcloud_cos/cos_auth.py``)::

    FormatString = method.lower() \\n path \\n params \\n headers \\n
    params/headers = "k=v&k=v", names lower-cased, names and values percent-encoded
                     (safe "-_.~"), sorted, only those listed in q-url-param-list / q-header-list
    StringToSign = "sha1" \\n q-sign-time \\n sha1hex(FormatString) \\n
    SignKey      = hmac_sha1(SecretKey, q-key-time).hexdigest()
    Signature    = hmac_sha1(SignKey, StringToSign).hexdigest()

``path`` is the object's path as the client meant it (``/`` + key), not URL-encoded. The SDK
signs the ``host`` it puts in the Host header, or the URL's host name without the port when it
sends no Host header itself; both forms are accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from cosfast.emulator.errors import CosError

SIGNATURE_FIELDS = (
    "q-sign-algorithm",
    "q-ak",
    "q-sign-time",
    "q-key-time",
    "q-header-list",
    "q-url-param-list",
    "q-signature",
)
TOKEN_NAME = "x-cos-security-token"


@dataclass(frozen=True)
class Credentials:
    """A key pair the emulator accepts; temporary keys carry a token and an expiry."""

    secret_id: str
    secret_key: str
    token: str | None = None
    expires_at: float | None = None

    def __repr__(self) -> str:  # never show the secret or the token
        kind = "temporary" if self.token else "permanent"
        return f"Credentials(secret_id={self.secret_id!r}, {kind})"


class KeyRing:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, Credentials] = {}

    def add(self, credentials: Credentials) -> None:
        with self._lock:
            self._keys[credentials.secret_id] = credentials

    def get(self, secret_id: str) -> Credentials | None:
        with self._lock:
            return self._keys.get(secret_id)


@dataclass(frozen=True)
class SignedRequest:
    """The parts of a request a COS signature covers, decoded."""

    method: str
    path: str
    query: Sequence[tuple[str, str]]
    headers: Mapping[str, str]  # case-insensitive mapping (aiohttp's CIMultiDictProxy)


def _encode(text: str) -> str:
    return quote(text.encode("utf-8", "surrogateescape"), "-_.~")


def _encoded_map(pairs) -> dict[str, str]:
    return {_encode(k).lower(): _encode(v) for k, v in pairs}


def signature(
    secret_key: str, fields: Mapping[str, str], request: SignedRequest, host: str | None
) -> str:
    """The q-signature a client holding ``secret_key`` would send for ``request``."""
    params = _encoded_map(request.query)
    headers = _encoded_map(request.headers.items())
    if host is not None:
        headers["host"] = _encode(host)
    param_names = sorted(n for n in fields["q-url-param-list"].split(";") if n)
    header_names = sorted(n for n in fields["q-header-list"].split(";") if n)
    format_str = "{}\n{}\n{}\n{}\n".format(
        request.method.lower(),
        request.path,
        "&".join(f"{n}={params.get(n, '')}" for n in param_names),
        "&".join(f"{n}={headers.get(n, '')}" for n in header_names),
    )
    string_to_sign = "sha1\n{}\n{}\n".format(
        fields["q-sign-time"],
        hashlib.sha1(format_str.encode("utf-8", "surrogateescape")).hexdigest(),
    )
    sign_key = hmac.new(
        secret_key.encode(), fields["q-key-time"].encode(), hashlib.sha1
    ).hexdigest()
    return hmac.new(sign_key.encode(), string_to_sign.encode(), hashlib.sha1).hexdigest()


def signature_fields(request: SignedRequest) -> dict[str, str] | None:
    """The q-* fields from the Authorization header or a presigned query; None if anonymous."""
    header = request.headers.get("Authorization", "").strip()
    if header:
        fields = {}
        for part in header.split("&"):
            name, _, value = part.partition("=")
            fields[name.strip().lower()] = value.strip()
        return fields
    query = {k.lower(): v for k, v in request.query}
    if "q-signature" in query:
        return {k: v for k, v in query.items() if k.startswith("q-")}
    return None


def _window(value: str, name: str) -> tuple[int, int]:
    start, sep, end = value.partition(";")
    try:
        if not sep:
            raise ValueError
        return int(start), int(end)
    except ValueError:
        raise CosError("AccessDenied", f"{name} must be '<start>;<end>' in seconds") from None


def verify(
    request: SignedRequest, keyring: KeyRing, *, now: float | None = None
) -> Credentials | None:
    """Checks the request's signature; returns the signer, or None for an anonymous request."""
    fields = signature_fields(request)
    if fields is None:
        return None
    missing = [f for f in SIGNATURE_FIELDS if f not in fields]
    if missing:
        raise CosError("AccessDenied", f"Authorization is missing {', '.join(missing)}")
    if fields["q-sign-algorithm"].lower() != "sha1":
        raise CosError("AccessDenied", "q-sign-algorithm must be sha1")
    credentials = keyring.get(fields["q-ak"])
    if credentials is None:
        raise CosError("InvalidAccessKeyId")
    now = time.time() if now is None else now
    for name in ("q-sign-time", "q-key-time"):
        start, end = _window(fields[name], name)
        if now > end:
            raise CosError("AccessDenied", "Request has expired")
        if now < start:
            raise CosError(
                "AccessDenied", "Request is not yet valid (q-sign-time starts in the future)"
            )
    if credentials.expires_at is not None and now > credentials.expires_at:
        raise CosError("AccessDenied", "The temporary credentials have expired")
    if credentials.token is not None:
        sent = request.headers.get(TOKEN_NAME) or dict(request.query).get(TOKEN_NAME)
        if not sent or not hmac.compare_digest(sent, credentials.token):
            raise CosError("AccessDenied", "The security token is missing or invalid")
    sent_signature = fields["q-signature"].lower()
    for host in _host_forms(request.headers.get("Host")):
        expected = signature(credentials.secret_key, fields, request, host)
        if hmac.compare_digest(expected, sent_signature):
            return credentials
    raise CosError("SignatureDoesNotMatch")


def _host_forms(host: str | None) -> list[str | None]:
    """The Host header as sent, and without its port (what the SDK signs for a bare URL)."""
    if not host:
        return [None]
    forms: list[str | None] = [host]
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():  # "[::1]" has no port: its last ":" is followed by "1]"
        forms.append(name)
    return forms
