"""How COS-API clients (the official SDK, cosfast) and S3 clients reach the bench's server.

Credentials come from COS_SECRET_ID / COS_SECRET_KEY when set (an external endpoint that
checks signatures); otherwise placeholders, which the no-auth emulator and nginx accept.
They travel in the environment, never in spec files or logs.
"""
from __future__ import annotations

import os
from urllib.parse import urlsplit

REGION = "ap-guangzhou"
PLACEHOLDER_ID = "AKIDbenchplaceholder"
PLACEHOLDER_KEY = "bench-placeholder-secret"


def credentials() -> tuple[str, str]:
    return (os.environ.get("COS_SECRET_ID", PLACEHOLDER_ID), os.environ.get("COS_SECRET_KEY", PLACEHOLDER_KEY))


def cos_config_kwargs(endpoint_url: str) -> dict:
    """CosConfig arguments, the same for qcloud_cos and cosfast: IP/Port send every request to
    the endpoint with ``Host: <bucket>.cos.<region>.myqcloud.com`` (virtual-host addressing)."""
    parts = urlsplit(endpoint_url)
    secret_id, secret_key = credentials()
    return {
        "Region": os.environ.get("COS_REGION", REGION),
        "SecretId": secret_id,
        "SecretKey": secret_key,
        "IP": parts.hostname,
        "Port": parts.port or (443 if parts.scheme == "https" else 80),
        "Scheme": parts.scheme,
    }


def sdk_client(endpoint):
    """The official SDK's client for an endpoint (``Endpoint`` or URL string)."""
    from qcloud_cos import CosConfig, CosS3Client

    url = endpoint if isinstance(endpoint, str) else endpoint.url
    return CosS3Client(CosConfig(**cos_config_kwargs(url)))
