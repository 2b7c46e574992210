"""Small clients for the emulator tests: the official SDK, and raw HTTP signed by the SDK."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import quote

from qcloud_cos import CosConfig, CosS3Client


def sdk(server, **overrides) -> CosS3Client:
    """The official SDK pointed at ``server`` (an Emulator or EmulatorScope)."""
    return CosS3Client(CosConfig(**server.sdk_config(**overrides)), retry=0)


def bucket_host(server, bucket: str) -> str:
    return f"{bucket}.cos.{server.region}.myqcloud.com"


@dataclass
class RawResponse:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def signed_headers(server, method: str, bucket: str, key: str, headers: dict | None = None) -> dict:
    """Host plus an Authorization the official SDK computes (an independent signer)."""
    host = bucket_host(server, bucket)
    signed = {"Host": host, **(headers or {})}
    auth = sdk(server).get_auth(Method=method, Bucket=bucket, Key=key, Headers=dict(signed))
    return {**signed, "Authorization": auth}


def raw_request(
    server,
    method: str,
    bucket: str,
    key: str,
    headers: dict | None = None,
    *,
    query: str = "",
    sign: bool = True,
) -> RawResponse:
    """One request over a fresh http.client connection, body read whole."""
    all_headers = (
        signed_headers(server, method, bucket, key, headers)
        if sign
        else {
            "Host": bucket_host(server, bucket),
            **(headers or {}),
        }
    )
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        path = "/" + quote(key, safe="/-_.~") + (f"?{query}" if query else "")
        conn.request(method, path, headers=all_headers)
        resp = conn.getresponse()
        return RawResponse(resp.status, resp.headers, resp.read())
    finally:
        conn.close()
