"""An HTTP error response -> the SDK's CosServiceError, exactly as its ``send_request`` builds
it (for the facade and for the download engine's failed parts)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

from cosfast.cos_exception import CosServiceError

__all__ = ["service_error"]


def _get(headers: Mapping, name: str) -> Optional[str]:
    lower = name.lower()
    for key, value in headers.items():
        if key.lower() == lower:
            return value
    return None


def _text(headers: Mapping, body: bytes) -> str:
    """The body as ``requests``' ``Response.text`` gives it for COS's XML (charset, else UTF-8)."""
    charset = "utf-8"
    for part in (_get(headers, "Content-Type") or "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip('"')
    try:
        return body.decode(charset, errors="replace")
    except (LookupError, ValueError):
        # Not a text codec ("hex"), or one without a "replace" mode ("idna"): a server's odd
        # charset must not turn its error into a crash.
        return body.decode("utf-8", errors="replace")


def service_error(method: str, url: str, status: int, headers: Mapping,
                  body: bytes) -> CosServiceError:
    """The CosServiceError the SDK raises for this response.

    A HEAD 404 (no body) is NoSuchResource with ``url`` as resource; an
    ``x-cos-error-code`` header gives the code with the body as message; otherwise the
    body's XML/JSON, or the headers when the body is empty. ``url`` is the request URL
    without its query."""
    request_id = _get(headers, "x-cos-request-id")
    if method == "HEAD" and status == 404:
        info = {"code": "NoSuchResource", "message": "The Resource You Head Not Exist",
                "resource": url}
        if request_id is not None:
            info["requestid"] = request_id
        trace_id = _get(headers, "x-cos-trace-id")
        if trace_id is not None:
            info["traceid"] = trace_id
        return CosServiceError(method, info, status)
    error_code = _get(headers, "x-cos-error-code")
    if error_code is not None:
        info = {"code": error_code}
        if request_id is not None:
            info["requestid"] = request_id
        info["message"] = _text(headers, body)
        return CosServiceError(method, info, status)
    text = _text(headers, body)
    return CosServiceError(method, text if text else dict(headers), status)
