"""A signed request ready for libcurl: URL with its query, and every header to send.

``prepare_request`` adds what the SDK's ``send_request`` adds (User-Agent, the security
token, Host when an IP is configured, ``Connection: close`` without KeepAlive) and then
the Authorization the SDK's ``CosS3Auth`` computes for the same headers and parameters."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlencode, urlsplit

from cosfast._version import __version__
from cosfast.auth import REQUEST_EXPIRE, SignInput, authorization
from cosfast.cos_exception import CosClientError

__all__ = ["PreparedRequest", "RequestSpec", "prepare_request", "DEFAULT_UA"]

DEFAULT_UA = f"cosfast-v{__version__}"
# Header names whose values must never be shown.
_SECRET_HEADERS = frozenset({"authorization", "x-cos-security-token", "x-ci-security-token"})


def _header_value(name: str, value: Any) -> bytes:
    """Header values as the SDK sends them (UTF-8 bytes); wrong types and CR/LF refused."""
    if isinstance(value, bool) or not isinstance(value, (str, bytes, int)):
        raise CosClientError(
            f"header {name} must be a string, got {type(value).__name__}"
        )
    raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
    if b"\r" in raw or b"\n" in raw or b"\0" in raw:
        raise CosClientError(f"header {name} contains a line break or NUL character")
    return raw


@dataclass(frozen=True)
class PreparedRequest:
    """What goes on the wire: ``url`` (with query) and ``headers`` (name -> bytes value).

    ``repr`` hides Authorization and security tokens."""

    method: str
    url: str
    headers: Mapping = field(repr=False)

    def header_lines(self) -> list:
        """Lines for ``pycurl.HTTPHEADER``. An empty value uses curl's ``Name;`` form,
        because ``Name:`` would tell curl to drop the header."""
        lines = []
        for name, value in self.headers.items():
            key = name.encode("latin-1")
            lines.append(key + b";" if value == b"" else key + b": " + value)
        return lines

    def __repr__(self) -> str:
        shown = {
            name: ("<redacted>" if name.lower() in _SECRET_HEADERS else value)
            for name, value in self.headers.items()
        }
        return f"PreparedRequest(method={self.method!r}, url={self.url!r}, headers={shown!r})"


@dataclass(frozen=True)
class RequestSpec:
    """One COS request before signing.

    ``url`` is without query; ``key`` is the raw object key (None for bucket requests);
    ``host`` is the Host to send when the config routes by IP."""

    method: str
    url: str
    key: Optional[str] = None
    headers: Mapping = field(default_factory=dict)
    params: Mapping = field(default_factory=dict)
    host: Optional[str] = None
    expire: int = REQUEST_EXPIRE
    sign_host: Optional[bool] = None


def prepare_request(config: Any, spec: RequestSpec) -> PreparedRequest:
    """Sign ``spec`` with ``config``'s credentials and render it for libcurl."""
    headers = dict(spec.headers)
    headers["User-Agent"] = config._ua if config._ua is not None else DEFAULT_UA
    secret_id, secret_key, token = config.credentials()
    if token is not None:
        headers["x-cos-security-token"] = token
    if config._ip is not None:
        if config._domain is not None:
            headers["Host"] = config._domain
        elif spec.host is not None:
            headers["Host"] = spec.host
    if config._keep_alive is False:
        headers["Connection"] = "close"
    wire = {name: _header_value(name, value) for name, value in headers.items()}
    if not config._anonymous:
        if not secret_id or not secret_key:
            raise CosClientError("SecretId and SecretKey is Required!")
        sign_host = config._sign_host if spec.sign_host is None else bool(spec.sign_host)
        wire["Authorization"] = authorization(
            SignInput(
                method=spec.method,
                key=spec.key,
                headers=wire,
                params=spec.params,
                # Only signed when no Host header is sent: skip parsing the URL otherwise.
                url_host=None if "Host" in wire else urlsplit(spec.url).hostname,
                expire=spec.expire,
                sign_host=sign_host,
                sign_params=config._sign_params,
            ),
            secret_id,
            secret_key,
        ).encode("ascii")
    url = spec.url
    if spec.params:
        url = url + "?" + urlencode(list(spec.params.items()))
    return PreparedRequest(method=spec.method, url=url, headers=wire)
