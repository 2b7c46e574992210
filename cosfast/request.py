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
from cosfast._comm import quote_key_path, to_unicode
from cosfast.auth import (REQUEST_EXPIRE, SignInput, authorization, canonical_headers, canonical_params,
                          encode_for_signature, joined, sign_joined, signable_headers)
from cosfast.cos_exception import CosClientError

__all__ = ["ObjectGetTemplate", "PreparedRequest", "RequestSpec", "prepare_request", "DEFAULT_UA"]

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


def header_line(name: str, value: bytes) -> bytes:
    """A line for ``pycurl.HTTPHEADER``. An empty value uses curl's ``Name;`` form, because
    ``Name:`` would tell curl to drop the header."""
    key = name.encode("latin-1")
    return key + b";" if value == b"" else key + b": " + value


def header_lines(headers: Mapping) -> list:
    """Lines for ``pycurl.HTTPHEADER`` from name -> bytes value."""
    return [header_line(name, value) for name, value in headers.items()]


@dataclass(frozen=True)
class PreparedRequest:
    """What goes on the wire: ``url`` (with query) and ``headers`` (name -> bytes value).

    ``repr`` hides Authorization and security tokens."""

    method: str
    url: str
    headers: Mapping = field(repr=False)

    def header_lines(self) -> list:
        return header_lines(self.headers)

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


def _added_headers(config: Any, host: Optional[str], token: Optional[str]) -> dict:
    """What ``prepare_request`` adds after the caller's headers, in the SDK's order."""
    added = {"User-Agent": config._ua if config._ua is not None else DEFAULT_UA}
    if token is not None:
        added["x-cos-security-token"] = token
    if config._ip is not None:
        if config._domain is not None:
            added["Host"] = config._domain
        elif host is not None:
            added["Host"] = host
    if config._keep_alive is False:
        added["Connection"] = "close"
    return added


def _check_keys(secret_id: Optional[str], secret_key: Optional[str]) -> None:
    if not secret_id or not secret_key:
        raise CosClientError("SecretId and SecretKey is Required!")


def prepare_request(config: Any, spec: RequestSpec) -> PreparedRequest:
    """Sign ``spec`` with ``config``'s credentials and render it for libcurl."""
    # One call: a CredentialInstance may rotate its keys and token between two.
    secret_id, secret_key, token = config.credentials()
    headers = dict(spec.headers)
    headers.update(_added_headers(config, spec.host, token))
    wire = {name: _header_value(name, value) for name, value in headers.items()}
    if not config._anonymous:
        _check_keys(secret_id, secret_key)
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


class ObjectGetTemplate:
    """Signed GETs of many objects of one bucket that share headers and parameters: for each
    object exactly what ``prepare_request`` renders, with the work that is the same for every
    object (URL host, fixed headers, their signed forms, the query) done once. A batch signs
    thousands of requests a second; this halved the per-object cost (62 -> 31 us).

    ``render(key, per_request)``: ``per_request`` are the headers that differ between requests
    (If-Match, Range), never Host."""

    def __init__(self, config: Any, bucket: str, headers: Mapping, params: Mapping) -> None:
        self._config = config
        self._bucket = bucket
        self._headers = dict(headers)
        self._url_prefix = config.uri(bucket=bucket)  # ends with "/"
        self._query = "?" + urlencode(list(params.items())) if params else ""
        self._host = config.get_host(Bucket=bucket) if config._ip else None
        self._fixed = {name: _header_value(name, value) for name, value in headers.items()}
        canonical = canonical_params(params, config._sign_params)
        self._params_joined, self._param_list = joined(canonical), ";".join(sorted(canonical))
        self._params = dict(params)
        # Keyed by the security token, which a CredentialInstance may rotate between requests.
        self._tail: tuple = (object(), {}, {})
        self._plans: dict = {}  # (token, per-request header names) -> _RenderPlan

    @property
    def params(self) -> dict:
        return dict(self._params)

    def with_params(self, params: Mapping) -> "ObjectGetTemplate":
        """The same GETs with other query parameters (a pinned versionId)."""
        return ObjectGetTemplate(self._config, self._bucket, self._headers, params)

    def _tail_for(self, token: Optional[str]) -> tuple:
        """(headers sent after the per-request ones, the canonical signed headers of all the
        fixed ones) for this token."""
        if self._tail[0] != token:
            config = self._config
            tail = {name: _header_value(name, value)
                    for name, value in _added_headers(config, self._host, token).items()}
            fixed = {**self._fixed, **tail}
            url_host = None if "Host" in fixed else urlsplit(self._url_prefix).hostname
            self._tail = (token, tail, canonical_headers(fixed, url_host, config._sign_host))
        return self._tail

    def _plan_for(self, token: Optional[str], names: tuple) -> "_RenderPlan":
        plan = self._plans.get((token, names))
        if plan is None:
            if len(self._plans) >= _MAX_PLANS:  # a rotating token: keep only recent ones
                self._plans.clear()
            plan = self._plans[(token, names)] = _RenderPlan(self, token, names)
        return plan

    def render(self, key: str, per_request: Mapping) -> tuple:
        """(URL, header lines) of the GET of ``key``: the lines of ``{**fixed headers,
        **per_request, **added headers, "Authorization": ...}`` in that dict's order."""
        if not key:
            raise CosClientError("Key is required not empty")
        config = self._config
        secret_id, secret_key, token = config.credentials()
        names = tuple(per_request)
        plan = self._plan_for(token, names)
        own = [_header_value(name, value) for name, value in per_request.items()]
        lines = [line if type(line) is bytes else header_line(names[line], own[line]) for line in plan.lines]
        if not config._anonymous:
            _check_keys(secret_id, secret_key)
            headers_joined = "&".join([piece if type(piece) is str else piece[0] + encode_for_signature(own[piece[1]])
                                       for piece in plan.signed])
            authorization_line = b"Authorization: " + sign_joined(
                "GET", key, self._params_joined, self._param_list, headers_joined, plan.header_list, secret_id,
                secret_key).encode("ascii")
            if plan.authorization_at is None:
                lines.append(authorization_line)
            else:
                lines[plan.authorization_at] = authorization_line
        url = self._url_prefix + quote_key_path(to_unicode(key)) + self._query
        return url, lines


# Render plans an ObjectGetTemplate keeps (one per security token and set of per-request headers).
_MAX_PLANS = 16


class _RenderPlan:
    """What ObjectGetTemplate.render does alike for every request with the same per-request
    header names and security token: the header lines in the order of the wire dict, with the
    index of a per-request header where its value goes; the signed headers as sorted ``k=v``
    pieces, with ``(k=, index)`` where a per-request value is encoded in; the signed names'
    list; and where Authorization goes (None: at the end)."""

    __slots__ = ("lines", "signed", "header_list", "authorization_at")

    def __init__(self, template: ObjectGetTemplate, token: Optional[str], names: tuple) -> None:
        _, tail, canonical_fixed = template._tail_for(token)
        slot_of = {name: index for index, name in enumerate(names)}  # a repeated name: its last value
        wire_order = {**template._fixed, **slot_of, **tail}
        self.lines: list = [header_line(name, tail[name]) if name in tail
                            else slot_of[name] if name in slot_of
                            else header_line(name, template._fixed[name]) for name in wire_order]
        names_in_order = list(wire_order)
        self.authorization_at = names_in_order.index("Authorization") if "Authorization" in wire_order else None
        signed_slots = {encode_for_signature(name).lower(): slot_of[name] for name in signable_headers(slot_of)}
        signed = {**canonical_fixed, **signed_slots}
        self.header_list = ";".join(sorted(signed))
        self.signed: list = [f"{name}={signed[name]}" if type(signed[name]) is str else (f"{name}=", signed[name])
                             for name in sorted(signed)]
