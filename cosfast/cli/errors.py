"""Exit codes of the ``cosfast`` command and the one-line message for each failure.

| code | meaning |
| ---- | ------- |
| 0    | everything asked for was done |
| 1    | a download failed (network, server error, integrity check), or some objects of a ``get -r`` failed |
| 2    | usage error: bad arguments, bad ``cos://`` URL, missing region or credentials file |
| 3    | authentication or permission refused (HTTP 401/403: wrong keys, expired token, no access) |
| 4    | not found: no such bucket or key, or nothing under the prefix of a ``get -r`` |
| 5    | local file system error: destination not writable, disk full, a path in the way |
| 130  | interrupted (Ctrl-C) |
"""
from __future__ import annotations

import enum
from typing import Iterable

from cosfast.cos_exception import CosClientError, CosServiceError
from cosfast.transfer.destination import CrcMismatchError, DownloadError, DownloadLockedError


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    AUTH = 3
    NOT_FOUND = 4
    LOCAL = 5
    INTERRUPTED = 130


class UsageError(Exception):
    """The command line asks for something impossible; exit 2 with this message."""


class CommandError(Exception):
    """A command failed in a way it explains itself (message and exit code)."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


_AUTH_CODES = frozenset({"AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "ExpiredToken",
                         "InvalidToken", "RequestTimeTooSkewed", "AuthorizationHeaderMalformed"})


def code_for_status(status: object, error_code: object = None) -> ExitCode:
    """Exit code for an HTTP status (and COS error code) of a refused request."""
    if status in (401, 403) or error_code in _AUTH_CODES:
        return ExitCode.AUTH
    if status == 404:
        return ExitCode.NOT_FOUND
    return ExitCode.FAILED


def describe(exc: BaseException) -> tuple[ExitCode, str]:
    """(exit code, one-line message) for an exception that ended a command."""
    if isinstance(exc, UsageError):
        return ExitCode.USAGE, str(exc)
    if isinstance(exc, CommandError):
        return exc.code, str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED, "interrupted"
    if isinstance(exc, CosServiceError):
        status, error_code = exc.get_status_code(), exc.get_error_code()
        text = f"{error_code}: {exc.get_error_msg()} (HTTP {status}, request id {exc.get_request_id()})"
        return code_for_status(status, error_code), text
    cause = exc.__cause__
    if isinstance(exc, CosClientError) and isinstance(cause, (OSError, DownloadError)) \
            and not isinstance(cause, (CrcMismatchError, DownloadLockedError)):
        return ExitCode.LOCAL, str(exc)  # the facade's wording, the local file system's fault
    status = getattr(exc, "status", None)
    if status is not None and not isinstance(exc, CosClientError):
        return code_for_status(status), f"{exc} (HTTP {status})"
    if isinstance(exc, OSError) and not _is_network_error(exc):
        return ExitCode.LOCAL, f"local file error: {exc}"
    if isinstance(exc, (CosClientError, ValueError, TypeError)):
        return ExitCode.FAILED, str(exc) or type(exc).__name__
    return ExitCode.FAILED, f"{type(exc).__name__}: {exc} (run with --debug for the traceback)"


def _is_network_error(exc: OSError) -> bool:
    return isinstance(exc, (ConnectionError, TimeoutError))


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replaces every secret (SecretKey, Token) in ``text``: a last line of defence for messages."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
