"""What can go wrong with one ranged transfer, in transport terms (no SDK types here: the
facade turns these into CosClientError / CosServiceError)."""
from __future__ import annotations


class TransferError(Exception):
    """A part could not be fetched. ``retryable`` says whether another attempt may succeed."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, headers: dict[str, str] | None = None,
                 body: bytes = b"", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.retry_after = retry_after


class RetryableTransferError(TransferError):
    """Connection reset, timeout, short body, 5xx, throttling: worth another attempt."""

    retryable = True


class ServerRefusedError(TransferError):
    """The server answered with a final error status (4xx other than 429); ``body`` holds its XML."""


class ObjectChangedError(TransferError):
    """The object's ETag no longer matches the one pinned at the start (HTTP 412 to If-Match)."""


class ProtocolViolationError(TransferError):
    """The server answered a ranged GET wrongly: 200 with the whole body, a different
    Content-Range, or a length other than asked. Not retried: the same server would do it again."""
