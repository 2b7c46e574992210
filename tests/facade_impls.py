"""The two implementations of the SDK's download API that the facade suite runs against."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import qcloud_cos
from qcloud_cos import cos_exception as sdk_exceptions

import cosfast
from cosfast import cos_exception as our_exceptions

# Headers whose values differ per request whoever sends it.
VOLATILE = {"Date", "x-cos-request-id", "x-cos-trace-id"}


@dataclass(frozen=True)
class Impl:
    name: str
    CosConfig: Any
    CosS3Client: Any
    CosServiceError: Any
    CosClientError: Any

    def client(self, server: Any, retry: int = 0, **overrides: Any) -> Any:
        """A client of ``server`` (an Emulator or EmulatorScope) with its permanent key."""
        return self.CosS3Client(self.CosConfig(**server.sdk_config(**overrides)), retry=retry)

    def __repr__(self) -> str:
        return self.name


SDK = Impl("qcloud_cos", qcloud_cos.CosConfig, qcloud_cos.CosS3Client,
           sdk_exceptions.CosServiceError, sdk_exceptions.CosClientError)
COSFAST = Impl("cosfast", cosfast.CosConfig, cosfast.CosS3Client,
               our_exceptions.CosServiceError, our_exceptions.CosClientError)
IMPLS = [SDK, COSFAST]


def stable(headers: dict) -> dict:
    """A response dict without the Body and the per-request values."""
    return {k: v for k, v in headers.items() if k != "Body" and k not in VOLATILE}


def accessors(error: Any) -> dict:
    """Every accessor of a CosServiceError, request and trace ids reduced to 'present'."""
    values = {name: getattr(error, name)() for name in (
        "get_status_code", "get_error_code", "get_error_msg", "get_resource_location")}
    values["has_request_id"] = error.get_request_id() not in ("", None, "Unknown")
    return values
