"""GET Bucket (List Objects v1) as COS answers it.

Keys after ``marker`` that start with ``prefix``, in byte order; with a ``delimiter``, keys
that contain it after the prefix roll up into one CommonPrefixes entry. ``max-keys`` (default
and cap 1000) counts keys and prefixes together. Unlike S3, COS returns ``NextMarker`` whenever
the page is truncated, with or without a delimiter. With ``encoding-type=url`` every key and
prefix (and Prefix, Marker, NextMarker) is percent-encoded.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote
from xml.sax.saxutils import escape

from cosfast.emulator.errors import CosError
from cosfast.emulator.storage import ObjectInfo

MAX_KEYS = 1000


@dataclass(frozen=True)
class ListQuery:
    prefix: str = ""
    delimiter: str = ""
    marker: str = ""
    max_keys: int = MAX_KEYS
    url_encoded: bool = False


@dataclass(frozen=True)
class ListPage:
    entries: tuple  # ("key", key) or ("prefix", common prefix), in listing order
    truncated: bool
    next_marker: str | None

    def keys(self) -> list[str]:
        return [name for kind, name in self.entries if kind == "key"]


def parse_list_query(query: Mapping[str, str]) -> ListQuery:
    raw_max = query.get("max-keys", "")
    max_keys = MAX_KEYS
    if raw_max != "":
        try:
            max_keys = int(raw_max)
        except ValueError:
            max_keys = -1
        if max_keys < 0:
            raise CosError(
                "InvalidArgument", f"max-keys must be a non-negative integer, got {raw_max!r}"
            )
    encoding = query.get("encoding-type", "")
    if encoding not in ("", "url"):
        raise CosError("InvalidArgument", f"encoding-type must be 'url', got {encoding!r}")
    return ListQuery(
        prefix=query.get("prefix", ""),
        delimiter=query.get("delimiter", ""),
        marker=query.get("marker", ""),
        max_keys=min(max_keys, MAX_KEYS),
        url_encoded=encoding == "url",
    )


def list_page(keys: Sequence[str], q: ListQuery) -> ListPage:
    """One page of the listing over ``keys`` (sorted)."""
    n = len(keys)
    i = max(
        bisect.bisect_right(keys, q.marker) if q.marker else 0, bisect.bisect_left(keys, q.prefix)
    )
    entries: list[tuple[str, str]] = []
    # Collect one entry beyond the page: its existence is what "truncated" means.
    while i < n and len(entries) <= q.max_keys:
        key = keys[i]
        if not key.startswith(q.prefix):
            break  # keys sharing a prefix are contiguous: nothing further can match
        cut = key.find(q.delimiter, len(q.prefix)) if q.delimiter else -1
        if cut < 0:
            entries.append(("key", key))
            i += 1
            continue
        common = key[: cut + len(q.delimiter)]
        if common > q.marker:  # a prefix at or before the marker was on an earlier page
            entries.append(("prefix", common))
        while i < n and keys[i].startswith(common):
            i += 1
    truncated = len(entries) > q.max_keys and q.max_keys > 0
    page = entries[: q.max_keys]
    return ListPage(tuple(page), truncated, page[-1][1] if truncated else None)


def _iso8601(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


def listing_xml(
    bucket: str, q: ListQuery, page: ListPage, info: Callable[[str], ObjectInfo], owner: str
) -> bytes:
    """COS's ListBucketResult document; ``info(key)`` gives each listed key's current version."""

    def text(value: str) -> str:
        return escape(quote(value, safe="-_.~") if q.url_encoded else value)

    out = ["<?xml version='1.0' encoding='utf-8' ?>\n<ListBucketResult>\n"]
    out.append(f"\t<Name>{escape(bucket)}</Name>\n")
    if q.url_encoded:
        out.append("\t<EncodingType>url</EncodingType>\n")
    out.append(f"\t<Prefix>{text(q.prefix)}</Prefix>\n")
    out.append(f"\t<Marker>{text(q.marker)}</Marker>\n")
    out.append(f"\t<MaxKeys>{q.max_keys}</MaxKeys>\n")
    if q.delimiter:
        # Sent as given: the SDK decodes Prefix, Marker, NextMarker and keys, not Delimiter.
        out.append(f"\t<Delimiter>{escape(q.delimiter)}</Delimiter>\n")
    out.append(f"\t<IsTruncated>{'true' if page.truncated else 'false'}</IsTruncated>\n")
    if page.next_marker is not None:
        out.append(f"\t<NextMarker>{text(page.next_marker)}</NextMarker>\n")
    for kind, name in page.entries:
        if kind != "key":
            continue
        obj = info(name)
        out.append(
            "\t<Contents>\n"
            f"\t\t<Key>{text(name)}</Key>\n"
            f"\t\t<LastModified>{_iso8601(obj.mtime)}</LastModified>\n"
            f"\t\t<ETag>{escape(obj.etag)}</ETag>\n"
            f"\t\t<Size>{obj.size}</Size>\n"
            f"\t\t<Owner>\n\t\t\t<ID>{escape(owner)}</ID>\n\t\t\t<DisplayName>{escape(owner)}</DisplayName>\n\t\t</Owner>\n"
            "\t\t<StorageClass>STANDARD</StorageClass>\n"
            "\t</Contents>\n"
        )
    for kind, name in page.entries:
        if kind == "prefix":
            out.append(
                f"\t<CommonPrefixes>\n\t\t<Prefix>{text(name)}</Prefix>\n\t</CommonPrefixes>\n"
            )
    out.append("</ListBucketResult>\n")
    return "".join(out).encode("utf-8", "surrogateescape")
