"""The HTTP rules of GET/HEAD Object: Range, conditional headers, response-* overrides, and
``x-cos-traffic-limit``. Pure functions over header values, so they are easy to reason about."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from cosfast.emulator.errors import CosError

# bit/s, as COS documents it: 100 KB/s .. 100 MB/s
TRAFFIC_LIMIT_MIN = 819200
TRAFFIC_LIMIT_MAX = 838860800
TRAFFIC_LIMIT_NAME = "x-cos-traffic-limit"

#: query parameter -> the response header it overrides
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class RangeSpec:
    """A single byte range as asked: ``first-last``, ``first-`` (last None) or ``-suffix``."""

    first: int | None
    last: int | None
    suffix: int | None = None


def parse_range(header: str | None) -> RangeSpec | None:
    """The one range asked for; None when absent or not a single valid byte range (ignored, as
    RFC 9110 says: the whole object is sent)."""
    if not header:
        return None
    m = _RANGE.match(header)
    if not m:
        return None
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return None
    if first == "":
        return RangeSpec(None, None, suffix=int(last))
    spec = RangeSpec(int(first), int(last) if last else None)
    if spec.last is not None and spec.last < spec.first:
        return None
    return spec


def resolve_range(spec: RangeSpec, size: int) -> tuple[int, int]:
    """[first, end) of an object of ``size`` bytes, or 416 InvalidRange with
    ``Content-Range: bytes */size``."""
    if spec.suffix is not None:
        if spec.suffix == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(0, size - spec.suffix), size
    assert spec.first is not None
    if spec.first >= size:
        raise _unsatisfiable(size)
    last = size - 1 if spec.last is None else min(spec.last, size - 1)
    return spec.first, last + 1


def _unsatisfiable(size: int) -> CosError:
    return CosError("InvalidRange", headers={"Content-Range": f"bytes */{size}"})


def _etags(header: str) -> list[str]:
    out = []
    for item in header.split(","):
        item = item.strip()
        if item.startswith("W/"):
            item = item[2:]
        out.append(item.strip('"'))
    return out


def _etag_matches(header: str, etag: str) -> bool:
    bare = etag.strip('"')
    return any(e == "*" or e == bare for e in _etags(header))


def _http_date(value: str) -> int | None:
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None  # an unparseable date is ignored, as RFC 9110 says


def check_conditions(headers: Mapping[str, str], etag: str, mtime: float) -> int | None:
    """RFC 9110 order, as COS: 412 (If-Match / If-Unmodified-Since failed), 304 (If-None-Match
    matched / not modified since), or None to go on."""
    modified = int(mtime)
    if_match = headers.get("If-Match")
    if if_match is not None:
        if not _etag_matches(if_match, etag):
            return 412
    else:
        since = headers.get("If-Unmodified-Since")
        date = _http_date(since) if since is not None else None
        if date is not None and modified > date:
            return 412
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        if _etag_matches(if_none_match, etag):
            return 304
    else:
        since = headers.get("If-Modified-Since")
        date = _http_date(since) if since is not None else None
        if date is not None and modified <= date:
            return 304
    return None


def traffic_limit(headers: Mapping[str, str], query: Mapping[str, str]) -> int | None:
    """The asked rate in bytes per second, or None; 400 InvalidArgument outside COS's range."""
    raw = headers.get(TRAFFIC_LIMIT_NAME) or query.get(TRAFFIC_LIMIT_NAME)
    if raw is None:
        return None
    try:
        bits = int(raw)
    except ValueError:
        bits = -1
    if not TRAFFIC_LIMIT_MIN <= bits <= TRAFFIC_LIMIT_MAX:
        raise CosError(
            "InvalidArgument",
            "x-cos-traffic-limit must be an integer in "
            f"{TRAFFIC_LIMIT_MIN}..{TRAFFIC_LIMIT_MAX} bit/s, "
            f"got {raw!r}",
        )
    return bits // 8


def response_overrides(query: Mapping[str, str]) -> dict[str, str]:
    return {header: query[name] for name, header in RESPONSE_OVERRIDES.items() if name in query}
