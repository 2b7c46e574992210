"""Text and name helpers with the SDK's exact rules (``qcloud_cos/cos_comm.py``).

Bucket, region and endpoint formatting, key checks and the key-to-URL-path quoting decide
which URL a request goes to and what gets signed, so they follow the SDK character for
character, error messages included."""
from __future__ import annotations

import re
from typing import Any, Optional
from urllib.parse import quote, urlsplit

from cosfast.cos_exception import CosClientError

_BUCKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9]$|^[A-Za-z0-9]$")
_REGION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*[A-Za-z0-9]$")
# {bucket}-{appid}.cos.{region}.myqcloud.com, the only hosts the SDK switches on retry.
_OLD_COS_HOST_RE = re.compile(
    r"^([a-z0-9-]+-[0-9]+\.)(cos\.[a-z]+-[a-z]+(-[a-z]+)?(-1)?)\.(myqcloud\.com)$"
)
# Regions that predate the "cos." prefix in host names.
_LEGACY_REGIONS = {"cn-north", "cn-south", "cn-east", "cn-south-2", "cn-southwest", "sg"}
# v4 region aliases the SDK maps onto v5 region names.
_V4_REGIONS = {
    "cossh": "ap-shanghai",
    "cosgz": "ap-guangzhou",
    "cosbj": "ap-beijing",
    "costj": "ap-beijing-1",
    "coscd": "ap-chengdu",
    "cossgp": "ap-singapore",
    "coshk": "ap-hongkong",
    "cosca": "na-toronto",
    "cosger": "eu-frankfurt",
}


def to_unicode(s: Any) -> Any:
    if isinstance(s, bytes):
        try:
            return s.decode("utf-8")
        except UnicodeDecodeError:
            raise CosClientError(
                "your bytes strings can not be decoded in utf8, utf8 support only!"
            ) from None
    return s


def to_bytes(s: Any) -> Any:
    if isinstance(s, str):
        try:
            return s.encode("utf-8")
        except UnicodeEncodeError:
            raise CosClientError(
                "your unicode strings can not encoded in utf8, utf8 support only!"
            ) from None
    return s


def to_str(s: Any) -> Any:
    """Non-strings to ``str``; ``str`` and ``bytes`` pass through (the SDK's ``to_str``)."""
    if isinstance(s, (str, bytes)):
        return s
    return str(s)


def format_region(region: Any, module: str, enable_old_domain: bool,
                  enable_internal_domain: bool) -> str:
    if not isinstance(region, str):
        raise CosClientError("region is not string type")
    if not region:
        raise CosClientError("region is required not empty!")
    if not _REGION_RE.match(region):
        raise CosClientError("region format is illegal, only digit, letter and - is allowed!")
    if module in region or region in _LEGACY_REGIONS:
        return region
    # Only the new tencentcos.cn domain has internal endpoints.
    if not enable_old_domain and enable_internal_domain and module == "cos.":
        module = "cos-internal."
    return module + _V4_REGIONS.get(region, region)


def format_endpoint(endpoint: Any, region: Any, module: str, enable_old_domain: bool,
                    enable_internal_domain: bool) -> Optional[str]:
    if not endpoint and not region and module == "cos.":
        raise CosClientError("Region or Endpoint is required not empty!")
    if endpoint:
        return to_unicode(endpoint)
    if region:
        region = format_region(region, module, enable_old_domain, enable_internal_domain)
        suffix = "myqcloud.com" if enable_old_domain else "tencentcos.cn"
        return f"{region}.{suffix}"
    return None


def format_bucket(bucket: Any, appid: Any) -> str:
    """Long bucket names (name-appid) pass through; a short one gets ``-appid`` appended."""
    if not isinstance(bucket, str):
        raise CosClientError("bucket is not string")
    if not bucket:
        raise CosClientError("bucket is required not empty")
    if not _BUCKET_RE.match(bucket):
        raise CosClientError("bucket format is illegal, only digit, letter and - is allowed!")
    if not appid:
        return bucket
    if not isinstance(appid, str):
        raise CosClientError("appid is not string")
    if bucket.endswith("-" + appid):
        return bucket
    return bucket + "-" + appid


def check_key(key: Any) -> str:
    """A key must be a string (or UTF-8 bytes); returns it as ``str``. Emptiness is
    checked where the SDK checks it (path_simplify_check, then uri), for its messages."""
    if not isinstance(key, (str, bytes)):
        raise CosClientError("key is not string")
    return to_unicode(key)


def path_simplify_check(path: Any) -> None:
    """Refuse a key that POSIX-normalises to ``/``: its GET would be a bucket listing."""
    stack: list = []
    for token in to_unicode(path).split("/"):
        if token == "..":
            if stack:
                stack.pop()
        elif token and token != ".":
            stack.append(token)
    if not stack:
        raise CosClientError("GetObject Key is invalid")


def quote_key_path(key: str) -> str:
    """The URL path of a key, without its leading ``/``, quoted as the SDK does.

    ``./`` becomes ``.%2F`` so that no HTTP stack folds ``a/../b`` into ``b``."""
    if key[0] == "/":
        key = key[1:]
    return quote(to_bytes(key), "/-_.~").replace("./", ".%2F")


def sign_path(key: Any) -> str:
    """The path that goes into the signature: the raw key with one leading ``/``."""
    if not key:
        return "/"
    key = to_unicode(key)
    return key if key[0] == "/" else "/" + key


def switch_hostname_for_url(url: str) -> str:
    """myqcloud.com -> tencentcos.cn for default bucket hosts (AutoSwitchDomainOnRetry)."""
    host = urlsplit(url).hostname
    if host and _OLD_COS_HOST_RE.match(host):
        return url.replace(host, host[: -len(".myqcloud.com")] + ".tencentcos.cn")
    return url


def is_switchable_host(url: str) -> bool:
    host = urlsplit(url).hostname
    return bool(host and _OLD_COS_HOST_RE.match(host))
