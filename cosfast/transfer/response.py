"""Parsing response heads as libcurl hands them over, one line at a time."""
from __future__ import annotations

import re
from typing import Any, Iterable, Optional, Union

# ASCII digits only: a Unicode \d also accepts "²" or "٣", which int() refuses or reads as a
# number no server meant.
_CONTENT_RANGE = re.compile(r"^bytes ([0-9]+)-([0-9]+)/([0-9]+|\*)$")


def parse_decimal(value: str | None) -> int | None:
    """A header value that is a non-negative decimal number (surrounding spaces allowed);
    None if absent or anything else."""
    if value is None:
        return None
    value = value.strip()
    # isdigit() alone also accepts "²" or "٣"; within ASCII it is exactly [0-9]+ (and faster than
    # a regex: two of these run per response).
    return int(value) if value.isascii() and value.isdigit() else None


class HeaderParser:
    """Collects response header lines (a ``pycurl.HEADERFUNCTION``) into a dict.

    Names keep the server's spelling; a repeated header is joined with ", " under its first
    spelling (as ``requests`` presents it); lookups with ``get`` ignore case. A new status
    line (after 1xx, or a redirect libcurl followed) starts a fresh set. Values are decoded
    as ISO-8859-1, as ``http.client`` does."""

    def __init__(self) -> None:
        self.status = 0
        self.reason = ""
        self.headers: dict = {}
        self.complete = False
        self._names: dict = {}
        self._last: Optional[str] = None

    def feed(self, line: Union[bytes, str]) -> None:
        self.feed_lines((line,))

    def feed_lines(self, lines: Iterable[Union[bytes, str]]) -> None:
        """``feed`` for each line, in one call: a batch of small objects parses ~10 lines per
        response, thousands of responses a second, so the loop keeps its state in locals."""
        headers, names, last = self.headers, self._names, self._last
        for line in lines:
            text = (line.decode("iso-8859-1") if isinstance(line, bytes) else line).rstrip("\r\n")
            if not text:
                if self.status >= 200:
                    self.complete = True
            elif text[0] == "H" and text.startswith("HTTP/"):
                parts = text.split(" ", 2)
                self.status = (parse_decimal(parts[1]) if len(parts) > 1 else None) or 0
                self.reason = parts[2] if len(parts) > 2 else ""
                self.headers = headers = {}
                self._names = names = {}
                last = None
                self.complete = False
            elif text[0] in " \t" and last is not None:
                headers[last] += " " + text.strip()
            else:
                # Repeated headers are joined under their first spelling.
                name, _, value = text.partition(":")
                name, value = name.strip(), value.strip()
                lower = name.lower()
                first = names.get(lower)
                if first is None:
                    names[lower] = last = name
                    headers[name] = value
                else:
                    headers[first] += ", " + value
                    last = first
        self._last = last

    def get(self, name: str, default: Any = None) -> Any:
        first = self._names.get(name.lower())
        return default if first is None else self.headers[first]


def parse_header_lines(lines: Iterable[Union[bytes, str]]) -> dict:
    """Header lines (of one or more responses) -> the last response's headers as a dict."""
    parser = HeaderParser()
    for line in lines:
        parser.feed(line)
    return parser.headers


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """(first, last, total) from ``bytes first-last/total``; total None for ``*``; None if malformed."""
    if value is None:
        return None
    m = _CONTENT_RANGE.match(value.strip())
    if not m:
        return None
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), int(m.group(2)), total
