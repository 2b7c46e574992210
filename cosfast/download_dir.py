"""``CosS3Client.download_dir``: every object under a prefix into a local folder (cosfast only).

This module only translates: arguments -> checked BatchOptions, listing pages -> ListedObjects,
each listed object -> a request builder pinned to its listed ETag. The work is in
cosfast/transfer/batch.py (flow, skip-unchanged, resume) and cosfast/transfer/keypath.py (where
keys land, which keys are refused).

Options (keyword-only):

- ``Include`` / ``Exclude``: glob patterns (a string or several) matched against the key relative
  to the prefix's folder part, i.e. the local relative path; ``*`` also matches '/'. A key is
  taken if it matches some include (or none is given) and no exclude.
- ``SkipUnchanged`` (True): a local file with the object's size and Last-Modified as its mtime is
  not fetched again (downloaded files get that mtime), so a rerun only fetches what changed or
  is missing. Large objects cut off mid-way continue from their resume record.
- ``PartSize`` (20 MiB): objects up to this size are one GET, larger ones ranged parts.
- ``MAXThread`` (16): transfers at once, for the whole batch (one engine, kept-alive connections).
- ``EnableCRC``: as download_file (the CRC-64 is checked whenever COS sends it; with True, objects
  without one are published with an UnverifiedDownloadWarning).
- ``MaxKeys`` (1000): keys per listing page (the first page asks for at most 100, so that
  downloads start before a long page is parsed). ``DumpRecordDir``: where resume records go.
- ``progress_callback(consumed_bytes, total_bytes)``: overall; ``total`` grows while the listing
  runs. ``object_callback(result)``: a cosfast.transfer.batch.ObjectResult per listed key (key,
  path, status 'downloaded' / 'skipped' / 'failed' / 'folder', size, error). Both are called one
  call at a time (never concurrently): with worker processes from the calling thread, in-process
  from the calling thread or one of the engine's lane threads.
- ``Processes``: worker processes to download with (cosfast.transfer.batch_workers). None (the
  default) forks one per usable core (at most 4) when the batch has at least 64 objects and the
  calling process has no other thread; 0 or 1 downloads in this process. An explicit number
  forks even when other threads run: use it only if no other thread can hold a lock the workers
  need (a fork copies locks as they are). MAXThread is the cap for all workers together.
- ``DirectIO`` (None): as download_file, for the objects larger than PartSize (by default their
  stages are written with O_DIRECT while the disk keeps up). Objects of at most PartSize always
  go through the page cache (written direct, 2000 x 256 KiB from nginx ran 0.66-0.69x as fast).
- ``KeepPageCache`` (None): as download_file: where the kernel hands freed memory to the VM's
  host and writes show the page cache to be slow, the files' pages are written back and dropped
  from the page cache as they are written, so the files after them reuse those pages. Objects
  of at most PartSize are written in 32 KiB pieces, which take cheap pages anyway, and keep
  theirs unless a large object is recycling (cosfast.transfer.pagecache); True always keeps
  them, False always drops them (a small file's once it is closed).
- ``Kwargs``: TrafficLimit, SSE-C headers and Response* overrides, sent for every object.
  Conditions (IfMatch, IfModifiedSince, ...), Range and VersionId name one object and are refused.

Returns a BatchSummary (downloaded, skipped, folders, failed [(key, reason)], bytes, seconds). A
failed or refused object does not stop the others; a listing that fails raises its error.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Optional

from cosfast.cos_exception import CosClientError
from cosfast.download_file import (MAX_CONNECTIONS, check_positive_int, engine_options, get_template, optional_flag,
                                   request_builder)
from cosfast.kwargs import check_download_headers, split_object_kwargs
from cosfast.transfer.batch import BatchOptions, BatchSummary, ListedObject, ListingPage
from cosfast.transfer.prefix import download_prefix
from cosfast.transfer.download import DownloadOptions
from cosfast.transfer.engine import RequestBuilder
from cosfast.transfer.record import ObjectIdentity

__all__ = ["download_dir"]

# Conditions and versions name one object; a batch pins each object by its listed ETag instead.
_PER_OBJECT_KWARGS = frozenset({"Range", "IfMatch", "IfNoneMatch", "IfModifiedSince", "IfUnmodifiedSince",
                                "VersionId"})
MAX_KEYS_PER_PAGE = 1000
# The first page is small: nothing downloads until it is parsed (a 1000-key page takes ~25 ms
# here), and later pages are listed while downloads run.
FIRST_PAGE_KEYS = 100
MAX_PROCESSES = 64


def _patterns(name: str, value: Any) -> tuple:
    """Include/Exclude: one glob string or an iterable of them."""
    patterns = (value,) if isinstance(value, str) else tuple(value or ())
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise CosClientError(f"{name} patterns must be strings, got {type(pattern).__name__}")
    return patterns


def _lister(client: Any, bucket: str, prefix: str, max_keys: int) -> Callable[[str], ListingPage]:
    def list_page(marker: str) -> ListingPage:
        page = client.list_objects(bucket, Prefix=prefix, Marker=marker,
                                   MaxKeys=max_keys if marker else min(max_keys, FIRST_PAGE_KEYS))
        objects = [ListedObject(key=item["Key"], size=int(item["Size"]), etag=item["ETag"],
                                last_modified=item.get("LastModified", ""))
                   for item in page.get("Contents") or []]
        if page.get("IsTruncated") != "true":
            return ListingPage(objects, None)
        next_marker = page.get("NextMarker") or (objects[-1].key if objects else None)
        if not next_marker:
            raise CosClientError("the listing is truncated but gives no marker to continue from")
        return ListingPage(objects, next_marker)

    return list_page


def download_dir(client: Any, Bucket: str, Prefix: str, LocalDir: Any, *, Include: Any = (), Exclude: Any = (),
                 SkipUnchanged: bool = True, PartSize: int = 20, MAXThread: int = 16, EnableCRC: bool = False,
                 MaxKeys: int = MAX_KEYS_PER_PAGE, DumpRecordDir: Optional[str] = None,
                 progress_callback: Optional[Callable[[int, int], None]] = None,
                 object_callback: Optional[Callable[[Any], None]] = None, Processes: Optional[int] = None,
                 DirectIO: Optional[bool] = None, KeepPageCache: Optional[bool] = None, **Kwargs: Any) -> BatchSummary:
    for name, value in (("Bucket", Bucket), ("Prefix", Prefix)):
        if not isinstance(value, str):
            raise CosClientError(f"{name} must be a string, got {type(value).__name__}")
    if not isinstance(LocalDir, (str, os.PathLike)) or not os.fspath(LocalDir):
        raise CosClientError(f"LocalDir must be a non-empty path, got {LocalDir!r}")
    check_positive_int("PartSize", PartSize)
    keep_page_cache = optional_flag("KeepPageCache", KeepPageCache)
    direct_io = optional_flag("DirectIO", DirectIO)
    check_positive_int("MAXThread", MAXThread, MAX_CONNECTIONS)
    check_positive_int("MaxKeys", MaxKeys, MAX_KEYS_PER_PAGE)
    if Processes is not None and Processes != 0:
        check_positive_int("Processes", Processes, MAX_PROCESSES)
    for name, value in (("progress_callback", progress_callback), ("object_callback", object_callback)):
        if value is not None and not callable(value):
            raise CosClientError(f"{name} must be callable, got {type(value).__name__}")
    refused = sorted(set(Kwargs) & _PER_OBJECT_KWARGS)
    if refused:
        raise CosClientError(f"download_dir does not take {', '.join(refused)}: it names one object")
    headers, params = split_object_kwargs(Kwargs)
    check_download_headers(headers)

    template = get_template(client, Bucket, headers, params)

    def request_for(identity: ObjectIdentity) -> RequestBuilder:
        return request_builder(template, identity)

    options = BatchOptions(
        include=_patterns("Include", Include), exclude=_patterns("Exclude", Exclude),
        skip_unchanged=bool(SkipUnchanged),
        download=DownloadOptions(part_size_mib=PartSize, max_connections=MAXThread, enable_crc=bool(EnableCRC),
                                 record_dir=DumpRecordDir, direct_io=direct_io,
                                 keep_page_cache=keep_page_cache,
                                 engine=engine_options(client, MAXThread)),
        progress_callback=progress_callback, object_callback=object_callback, processes=Processes)
    return download_prefix(bucket=Bucket, prefix=Prefix, local_dir=os.fspath(LocalDir),
                           list_page=_lister(client, Bucket, Prefix, MaxKeys), request_for=request_for,
                           options=options)
