"""Parsing response heads as libcurl hands them over, one line at a time."""
from __future__ import annotations

import re

# ASCII digits only: str.isdigit() and a Unicode \d also accept "²" or "٣", which int()
# refuses or reads as a number no server meant.
_CONTENT_RANGE = re.compile(r"^bytes ([0-9]+)-([0-9]+)/([0-9]+|\*)$")
_DECIMAL = re.compile(r"[0-9]+")


def parse_decimal(value: str | None) -> int | None:
    """A header value that is a non-negative decimal number (surrounding spaces allowed);
    None if absent or anything else."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if _DECIMAL.fullmatch(value) else None


class ResponseHead:
    """Status and headers of one response. Header names keep the server's spelling in
    ``headers``; lookups by lowercase name go through ``get``."""

    __slots__ = ("status", "headers", "_lower", "complete")

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self._lower: dict[str, str] = {}
        self.complete = False

    def feed(self, raw: bytes) -> bool:
        """Takes one header line; returns True when the head is complete (the blank line)."""
        line = raw.decode("latin-1").rstrip("\r\n")
        if line.startswith("HTTP/"):
            # A new status line (after 100 Continue, or a new attempt) starts a new head.
            self.headers.clear()
            self._lower.clear()
            self.complete = False
            parts = line.split(" ", 2)
            self.status = (parse_decimal(parts[1]) if len(parts) > 1 else None) or 0
            return False
        if not line:
            self.complete = self.status >= 200
            return self.complete
        name, sep, value = line.partition(":")
        if sep:
            name = name.strip()
            value = value.strip()
            self.headers[name] = value
            self._lower[name.lower()] = value
        return False

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._lower.get(name.lower(), default)


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """(first, last, total) from ``bytes first-last/total``; total None for ``*``; None if malformed."""
    if value is None:
        return None
    m = _CONTENT_RANGE.match(value.strip())
    if not m:
        return None
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), int(m.group(2)), total
