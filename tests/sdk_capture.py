"""Run the official SDK up to the wire and keep the request it would send.

The SDK accepts a ``session`` (a requests.Session) in CosS3Client; this one records the
PreparedRequest it is given and stops there, so tests can compare URLs and signatures
with cosfast's without a server."""
from __future__ import annotations

import requests


class Captured(Exception):
    """Raised instead of sending; the SDK turns it into its CosClientError."""


class CaptureSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list = []

    def send(self, request, **kwargs):  # noqa: ANN001 - requests' signature
        self.requests.append(request)
        raise Captured("captured")
