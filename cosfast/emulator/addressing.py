"""Which bucket and key a request names.

* virtual-host: ``Host: <bucket>-<appid>.cos.<region>.myqcloud.com`` (what the official SDK
  sends when configured with ``IP=``/``Port=``), key = the path;
* path-style: ``/<bucket>/<key>`` when the Host is an address (S3 clients, curl);
* the default bucket, for clients configured with ``Domain=`` (Host is the server itself and
  the path is the key), when the first path segment is not an existing bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable
from urllib.parse import unquote

from cosfast.emulator.storage import BUCKET_NAME


@dataclass(frozen=True)
class Target:
    bucket: str | None  # None: the service (list buckets)
    key: str | None  # None: the bucket itself
    path: str  # the decoded URL path: what a COS signature covers


def host_bucket(host: str | None) -> str | None:
    """The bucket a virtual-host style Host names, if it names one."""
    if not host:
        return None
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    label, dot, _rest = name.partition(".")
    if dot and BUCKET_NAME.match(label):
        return label
    return None


def resolve_target(
    host: str | None, raw_path: str, has_bucket: Callable[[str], bool], default_bucket: str | None
) -> Target:
    # Decode the raw path ourselves: a key may hold "..", "//" or "%2F", which must survive.
    path = unquote(raw_path.split("?", 1)[0], errors="surrogateescape")
    bucket = host_bucket(host)
    if bucket is not None:
        return Target(bucket, path[1:] or None, path)
    first, _, rest = path[1:].partition("/")
    if first and (has_bucket(first) or default_bucket is None):
        return Target(first, rest or None, path)
    if default_bucket is not None:
        return Target(default_bucket, path[1:] or None, path)
    return Target(None, None, path)
