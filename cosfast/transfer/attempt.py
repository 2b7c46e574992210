"""One HTTP exchange of one job: check that the response is exactly the bytes asked for, and
judge how the exchange ended (done, retryable, final).

A ranged GET must come back as 206 with the exact Content-Range and Content-Length asked for; a
whole-object GET as 200 with the object's length. Anything else in a success status is a
protocol violation, never data: the body is not let near the part's file.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import pycurl

from cosfast.transfer.errors import (
    ObjectChangedError,
    ProtocolViolationError,
    RetryableTransferError,
    ServerRefusedError,
    TransferError,
)
from cosfast.transfer.response import HeaderParser, parse_content_range, parse_decimal
from cosfast.transfer.retry import RETRYABLE_STATUS, parse_retry_after

if TYPE_CHECKING:
    from cosfast.transfer.engine import RangeJob

# Error bodies are small XML documents; keep at most this much of one.
MAX_ERROR_BODY = 64 * 1024

# libcurl errors that say the network, not the request, failed: worth retrying.
RETRYABLE_CURL_ERRORS = frozenset({
    pycurl.E_COULDNT_CONNECT,
    pycurl.E_COULDNT_RESOLVE_HOST,
    pycurl.E_OPERATION_TIMEDOUT,
    pycurl.E_PARTIAL_FILE,
    pycurl.E_RECV_ERROR,
    pycurl.E_SEND_ERROR,
    pycurl.E_GOT_NOTHING,
    pycurl.E_SSL_CONNECT_ERROR,
    getattr(pycurl, "E_HTTP2", 16),
    getattr(pycurl, "E_HTTP2_STREAM", 92),
})


class Attempt:
    """State of one HTTP exchange for one job: the response head and where the body goes.

    ``on_header`` (the HEADERFUNCTION) only collects the raw lines: it is a list's ``append``,
    so libcurl's ~10 calls per response cost no Python frame. The head is parsed once, by
    ``read_head()``: at the first body chunk (before any byte can reach the sink) or, for a
    response without a body, when the exchange ends."""

    __slots__ = ("job", "head", "range_asked", "accept_body", "error_body", "violation", "write",
                 "writer", "on_header", "_lines", "_head_read")

    def __init__(self, job: "RangeJob", range_asked: Optional[str]) -> None:
        self.job = job
        self.head = HeaderParser()
        self.range_asked = range_asked
        self.accept_body = False
        self.error_body = bytearray()
        self.violation: Optional[TransferError] = None
        self._lines: list = []
        self.on_header = self._lines.append
        self._head_read = False
        sink = job.sink

        def write(chunk: bytes) -> Optional[int]:
            if not self._head_read:
                self.read_head()
                if self.violation is not None:
                    return 0  # abort: the body is not the bytes we asked for
            if self.accept_body:
                return sink(chunk)
            if len(self.error_body) < MAX_ERROR_BODY:
                self.error_body += chunk[: MAX_ERROR_BODY - len(self.error_body)]
            return None

        self.write = write
        self.writer: object = None  # what the engine's bind_writer returned: kept while the transfer runs

    def read_head(self) -> None:
        """Parses the collected header lines (once) and decides whether the body is the data
        asked for; sets ``violation`` when a success status brings something else."""
        if self._head_read:
            return
        self._head_read = True
        head = self.head
        head.feed_lines(self._lines)
        if head.complete:
            self.accept_body = self._head_is_the_data_asked()

    def _head_is_the_data_asked(self) -> bool:
        """True if the body that follows is exactly the bytes asked; sets ``violation`` when the
        server answered with something else in a success status."""
        job, head = self.job, self.head
        first = job.part.offset + job.sink.written
        expected_len = job.part.end - first
        if self.range_asked is None:
            if head.status != 200:
                return False
            length = head.get("Content-Length")
            if parse_decimal(length) != job.object_size:
                self.violation = ProtocolViolationError(
                    f"GET answered with Content-Length {length!r}, the object has {job.object_size} bytes",
                    status=head.status, headers=dict(head.headers))
            return self.violation is None
        if head.status == 200:
            self.violation = ProtocolViolationError(
                f"ranged GET ({self.range_asked}) answered with 200 and the whole object instead of 206",
                status=200, headers=dict(head.headers))
            return False
        if head.status != 206:
            return False
        crange = parse_content_range(head.get("Content-Range"))
        wanted = (first, job.part.end - 1, job.object_size)
        if crange != wanted:
            self.violation = ProtocolViolationError(
                f"asked for {self.range_asked} of {job.object_size} bytes, the server sent "
                f"Content-Range {head.get('Content-Range')!r}", status=206, headers=dict(head.headers))
            return False
        length = head.get("Content-Length")
        if length is not None and parse_decimal(length) != expected_len:
            self.violation = ProtocolViolationError(
                f"asked for {expected_len} bytes ({self.range_asked}), Content-Length says {length}",
                status=206, headers=dict(head.headers))
            return False
        return True


def outcome(attempt: Attempt, curl_error: Optional[tuple[int, str]]) -> Optional[BaseException]:
    """None if the attempt delivered the whole part, else the error that ended it."""
    attempt.read_head()
    job, head = attempt.job, attempt.head
    sink = job.sink
    if sink.error is not None:
        return sink.error  # the disk (or an overflow): final, never retried
    if attempt.violation is not None:
        return attempt.violation
    if attempt.accept_body:
        if curl_error is None and sink.written == job.part.length:
            return None
        reason = curl_error[1] if curl_error else "connection closed early"
        return RetryableTransferError(
            f"part at offset {job.part.offset} stopped after {sink.written} of {job.part.length} bytes: {reason}")
    if curl_error is not None and not head.complete:
        errno, msg = curl_error
        cls = RetryableTransferError if errno in RETRYABLE_CURL_ERRORS else TransferError
        return cls(f"transfer failed: {msg} (curl error {errno})")
    status = head.status
    headers = dict(head.headers)
    body = bytes(attempt.error_body)
    if status == 412:
        return ObjectChangedError("the object changed since the download started (If-Match failed)",
                                  status=status, headers=headers, body=body)
    if status in RETRYABLE_STATUS:
        return RetryableTransferError(f"server answered {status}", status=status, headers=headers, body=body,
                                      retry_after=parse_retry_after(head.get("Retry-After")))
    return ServerRefusedError(f"server answered {status}", status=status, headers=headers, body=body)
