"""What the command line names: ``cos://bucket/key`` URLs and how to reach COS (keys, region,
``--endpoint-url``)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Optional
from urllib.parse import urlsplit

from cosfast.cli.errors import UsageError

SCHEME = "cos://"
# COS bucket names are BucketName-APPID: lowercase letters, digits and dashes.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
# Region used in the Host header when only --endpoint-url is given: the endpoint decides anyway.
ENDPOINT_PLACEHOLDER_REGION = "ap-guangzhou"


@dataclass(frozen=True)
class CosUrl:
    bucket: str
    key: str  # may be empty (the whole bucket) or a prefix

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"


def parse_cos_url(text: str) -> CosUrl:
    """``cos://bucket/key`` -> CosUrl. The key is taken verbatim: ``?``, ``#``, ``%`` and spaces
    are part of it (no URL decoding), as COS keys may hold them."""
    if not text.startswith(SCHEME):
        raise UsageError(f"{text!r} is not a COS URL: expected cos://bucket/key")
    bucket, _, key = text[len(SCHEME):].partition("/")
    if not bucket:
        raise UsageError(f"{text!r} names no bucket: expected cos://bucket/key")
    if not _BUCKET.match(bucket):
        raise UsageError(f"{bucket!r} is not a COS bucket name (BucketName-APPID: lowercase letters, digits, '-')")
    return CosUrl(bucket, key)


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str  # as it goes into the URL (IPv6 in brackets)
    port: Optional[int]


def parse_endpoint_url(url: str) -> Endpoint:
    """``http://127.0.0.1:9000`` -> Endpoint; only a scheme, a host and a port are allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"--endpoint-url {url!r}: the scheme must be http or https")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"--endpoint-url {url!r}: the port is not a number from 0 to 65535") from None
    if not parts.hostname:
        raise UsageError(f"--endpoint-url {url!r} names no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise UsageError(f"--endpoint-url {url!r}: give only scheme://host[:port]")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return Endpoint(parts.scheme, host, port)


@dataclass(frozen=True)
class Connection:
    """How to reach COS; secrets are kept out of the repr."""

    region: Optional[str]
    secret_id: Optional[str]
    secret_key: Optional[str] = field(default=None, repr=False)
    token: Optional[str] = field(default=None, repr=False)
    endpoint: Optional[Endpoint] = None
    scheme: str = "https"

    @classmethod
    def from_args(cls, args: object, env: Mapping[str, str]) -> "Connection":
        """Flags first, then COS_SECRET_ID, COS_SECRET_KEY, COS_TOKEN, COS_REGION, COS_ENDPOINT_URL."""
        def pick(flag: str, variable: str) -> Optional[str]:
            value = getattr(args, flag, None)
            return value if value else (env.get(variable) or None)

        endpoint_url = pick("endpoint_url", "COS_ENDPOINT_URL")
        endpoint = parse_endpoint_url(endpoint_url) if endpoint_url else None
        secret_id, secret_key = pick("secret_id", "COS_SECRET_ID"), pick("secret_key", "COS_SECRET_KEY")
        if bool(secret_id) != bool(secret_key):
            missing = "the SecretKey (COS_SECRET_KEY or --secret-key)" if secret_id else \
                "the SecretId (COS_SECRET_ID or --secret-id)"
            raise UsageError(f"{missing} is missing: give both keys, or neither for anonymous access")
        region = pick("region", "COS_REGION")
        if region is None and endpoint is None:
            raise UsageError("no region: set COS_REGION or pass --region (e.g. ap-guangzhou)")
        return cls(region=region, secret_id=secret_id, secret_key=secret_key,
                   token=pick("token", "COS_TOKEN"), endpoint=endpoint,
                   scheme=endpoint.scheme if endpoint else "https")

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.secret_key, self.token) if s)

    def config_kwargs(self) -> dict:
        """CosConfig arguments. An endpoint becomes IP + Port (+ Scheme): every request goes to it,
        and the Host header still names the bucket (``<bucket>.cos.<region>.myqcloud.com``), which
        the emulator and COS-compatible servers route by."""
        kwargs: dict = {"Region": self.region or ENDPOINT_PLACEHOLDER_REGION, "Scheme": self.scheme}
        if self.secret_id:
            kwargs.update(SecretId=self.secret_id, SecretKey=self.secret_key, Token=self.token)
        else:
            kwargs["Anonymous"] = True
        if self.endpoint is not None:
            kwargs.update(IP=self.endpoint.host, Port=self.endpoint.port)
        return kwargs
