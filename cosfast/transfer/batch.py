"""Many objects at once: the pieces of downloading a COS prefix into a local folder (put
together by cosfast.transfer.prefix, in this process or in worker processes).

The flow: a background thread (Lister) pages through the listing (List Objects v1, marker) into a
bounded queue; a Selector filters and places each listed key, in listing order; a Batch turns
each placed object into its jobs (one whole-object GET for small objects, ranged parts for large
ones, as ``download_file`` decides), pulled lazily by ONE TransferEngine (the engine's lanes call
into it one at a time), so all its objects share kept-alive connections and one cap on
concurrent transfers, and the first downloads run while later pages are still being listed; a
Reporter keeps the summary and calls the callbacks. Each object is
verified and renamed into place like ``download_file`` (cosfast.transfer.download.new_transfer);
a failed object is
reported and the others go on.

Objects are pinned by the listing: every request carries ``If-Match`` with the listed ETag, and
the size must match, so an object replaced after it was listed fails with a clear reason instead
of mixing versions. CRC-64: the listing has none, so each GET response's
``x-cos-hash-crc64ecma`` is compared with the bytes received.

Local paths come from cosfast.transfer.keypath (unsafe keys refused, folder markers, file/folder
conflicts). A rerun resumes: files whose size and mtime match the object (the mtime is set to the
object's Last-Modified on download) are skipped, and a large object cut off mid-way continues
from its resume record.
"""
from __future__ import annotations

import calendar
import collections
import email.utils
import fnmatch
import functools
import os
import queue
import re
import stat
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

from cosfast.cos_exception import digest_xml
from cosfast.transfer.destination import folder_in_the_way
from cosfast.transfer.download import AnyTransfer, DownloadOptions, new_transfer
from cosfast.transfer.engine import RangeJob, RequestBuilder
from cosfast.transfer.errors import TransferError
from cosfast.transfer.keypath import KeyPlacementError, LocalTree, strip_prefix
from cosfast.transfer.record import ObjectIdentity

__all__ = ["ListedObject", "ListingPage", "ObjectResult", "BatchSummary", "BatchOptions", "Lister", "Reporter",
           "Selector", "Batch", "listed_source", "END", "DOWNLOADED", "SKIPPED", "FAILED", "FOLDER"]

DOWNLOADED, SKIPPED, FAILED, FOLDER = "downloaded", "skipped", "failed", "folder"
_ISO8601 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)")
# How long the lister waits on a full queue before checking whether it was told to stop.
_PUT_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class ListedObject:
    key: str
    size: int
    etag: str
    last_modified: str  # as the listing gives it (ISO 8601)


@dataclass(frozen=True)
class ListingPage:
    objects: list[ListedObject]
    next_marker: Optional[str]  # None on the last page


@dataclass(frozen=True)
class ObjectResult:
    """What happened to one listed key; given to ``object_callback`` as it happens."""

    key: str
    path: Optional[str]  # None when the key was refused before it had a path
    status: str  # DOWNLOADED, SKIPPED (local copy unchanged), FAILED, FOLDER (a folder marker)
    size: int
    error: Optional[str] = None


@dataclass
class BatchSummary:
    """What a download_dir run did. ``failed`` holds (key, reason) pairs."""

    downloaded: int = 0
    skipped: int = 0
    folders: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    bytes: int = 0  # size of the objects downloaded in this run
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict:
        return {"downloaded": self.downloaded, "skipped": self.skipped, "folders": self.folders,
                "failed": [{"key": key, "reason": reason} for key, reason in self.failed],
                "bytes": self.bytes, "seconds": round(self.seconds, 6)}


@dataclass(frozen=True)
class BatchOptions:
    """How to download a prefix.

    ``include``/``exclude`` are fnmatch globs matched against the key relative to the prefix's
    folder part (the local relative path); ``*`` also matches ``/``. A key is taken if it matches
    some include (or there are none) and no exclude. ``progress_callback(consumed, total)`` gets
    overall bytes (``total`` grows while the listing runs); ``object_callback(ObjectResult)`` is
    called once per listed key. Both are called from the engine's lanes (the thread that runs
    download_prefix, or a lane thread), one call at a time."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    skip_unchanged: bool = True
    download: DownloadOptions = DownloadOptions(max_connections=16)
    progress_callback: Optional[Callable[[int, int], None]] = None
    object_callback: Optional[Callable[[ObjectResult], None]] = None
    # Listed pages (up to MaxKeys objects each) waiting for a connection; bounds memory however
    # large the prefix is.
    queue_pages: int = 4
    # Worker processes (cosfast.transfer.batch_workers): None decides from the machine and the
    # batch; 0 or 1 downloads in this process.
    processes: Optional[int] = None


ListPage = Callable[[str], ListingPage]  # marker -> page
RequestFor = Callable[[ObjectIdentity], RequestBuilder]  # a request builder pinned to the identity's ETag


# Objects uploaded together share their LastModified: a batch parses each value once.
@functools.lru_cache(maxsize=256)
def listing_time(value: str) -> Optional[float]:
    """Seconds since the epoch of a listing's LastModified (ISO 8601, UTC) or an HTTP date."""
    match = _ISO8601.match(value or "")
    if match:
        return float(calendar.timegm(tuple(int(g) for g in match.groups()) + (0, 0, 0)))
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def local_status(path: str) -> Optional[os.stat_result]:
    """What is at ``path`` now; None if nothing (or it cannot be looked at: the download says why)."""
    try:
        return os.stat(path)
    except OSError:
        return None


def is_unchanged(st: Optional[os.stat_result], size: int, mtime: Optional[float]) -> bool:
    """True if ``st`` is of a regular file with this size and (to the second) this mtime."""
    if mtime is None or st is None:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == size and int(st.st_mtime) == int(mtime)


def failure_reason(error: BaseException) -> str:
    """One line saying why an object failed; COS's error code and message when it sent them."""
    if isinstance(error, TransferError) and error.status is not None and error.body:
        digest = digest_xml(error.body)
        if isinstance(digest, dict) and digest.get("code"):
            return f"{digest['code']}: {digest.get('message', '')} (HTTP {error.status})"
    return str(error) or type(error).__name__


END = object()


class Lister(threading.Thread):
    """Pages through the listing into a bounded queue of pages (lists of ListedObject), from a
    first page already listed; ends it with END (after ``error`` if any).

    The first page is queued at once, so its objects can be handed out before the thread
    starts: parsing a page holds the GIL for milliseconds, which at the start of a batch would
    keep the workers waiting for their first objects. Whole pages, not objects, go through the
    queue: one handover per page instead of one per object."""

    def __init__(self, list_page: ListPage, queue_pages: int, first_page: ListingPage) -> None:
        super().__init__(name="cosfast-lister", daemon=True)
        self.queue: "queue.Queue[object]" = queue.Queue(queue_pages)
        self.error: Optional[BaseException] = None
        self._list_page = list_page
        self._first_page = first_page
        self._stopping = threading.Event()
        if first_page.objects:
            self.queue.put_nowait(first_page.objects)
        if first_page.next_marker is None:
            self.queue.put_nowait(END)

    def run(self) -> None:
        page, marker = self._first_page, ""
        if page.next_marker is None:
            return  # the first page was the last: already queued with END
        try:
            while not self._stopping.is_set():
                if page.next_marker <= marker:
                    raise RuntimeError(f"the listing went backwards (marker {page.next_marker!r} after {marker!r})")
                marker = page.next_marker
                page = self._list_page(marker)
                if page.objects:
                    self._put(page.objects)
                if page.next_marker is None:
                    break
        except BaseException as exc:  # handed to the downloading thread, which raises it
            self.error = exc
        finally:
            self._put(END)

    def _put(self, item: object) -> None:
        while not self._stopping.is_set():
            try:
                self.queue.put(item, timeout=_PUT_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def stop(self) -> None:
        self._stopping.set()


class Reporter:
    """Where a batch's outcomes go: the summary, the callbacks and the overall byte counts."""

    def __init__(self, options: BatchOptions) -> None:
        self.summary = BatchSummary()
        self.consumed = 0
        self.total = 0
        self._object_callback = options.object_callback
        self._progress_callback = options.progress_callback

    def result(self, result: ObjectResult) -> None:
        summary = self.summary
        if result.status == DOWNLOADED:
            summary.downloaded += 1
            summary.bytes += result.size
        elif result.status == SKIPPED:
            summary.skipped += 1
        elif result.status == FOLDER:
            summary.folders += 1
        else:
            summary.failed.append((result.key, result.error or "failed"))
        if self._object_callback is not None:
            self._object_callback(result)

    def add_total(self, nbytes: int) -> None:
        self.total += nbytes
        self._progress()

    def add_consumed(self, nbytes: int) -> None:
        if nbytes:
            self.consumed += nbytes
            self._progress()

    def _progress(self) -> None:
        if self._progress_callback is not None:
            self._progress_callback(self.consumed, self.total)


class Selector:
    """Decides, for each listed key in listing order, whether and where it lands: the filters,
    the key-to-path placement (which needs every earlier key, to tell files from folders) and
    folder markers. Refusals and folders are reported at once."""

    def __init__(self, prefix: str, local_dir: str, options: BatchOptions, reporter: Reporter) -> None:
        self.prefix = prefix
        self.tree = LocalTree(local_dir, prefix)
        self._include = options.include
        self._exclude = options.exclude
        self._reporter = reporter

    def place(self, listed: ListedObject) -> Optional[PlacedObject]:
        """Where to download ``listed`` to; None if it is filtered out, refused or a folder."""
        if not self._wanted(listed.key):
            return None
        try:
            placement = self.tree.place(listed.key)
            fresh = self.tree.make_folder(placement)
        except KeyPlacementError as exc:
            self._reporter.result(ObjectResult(listed.key, None, FAILED, listed.size, exc.reason))
            return None
        if placement.folder:
            self._reporter.result(ObjectResult(listed.key, placement.path, FOLDER, 0))
            return None
        return listed, placement.path, fresh

    def _wanted(self, key: str) -> bool:
        relative = strip_prefix(key, self.prefix)
        if self._include and not any(fnmatch.fnmatchcase(relative, p) for p in self._include):
            return False
        return not any(fnmatch.fnmatchcase(relative, p) for p in self._exclude)


# A placed object: what was listed, the local path it goes to, and whether its folder was new or
# empty when the batch met it (then nothing of an earlier run can be at the path, and the batch
# does not look).
PlacedObject = tuple[ListedObject, str, bool]
# Where a batch takes its placed objects from: source(block) -> a PlacedObject, None for "nothing
# yet" (only when block is False) or END once there will be no more.
PlacedSource = Callable[[bool], object]


def listed_source(lister: Lister, selector: Selector) -> PlacedSource:
    """The placed objects of a listing running in this process."""
    page: collections.deque[ListedObject] = collections.deque()
    ended = False

    def next_placed(block: bool) -> object:
        nonlocal ended
        while True:
            if not page:
                if ended:
                    return END
                try:
                    item = lister.queue.get(block=block)
                except queue.Empty:
                    return None
                if item is END:
                    ended = True
                    return END
                page.extend(item)  # type: ignore[arg-type]
                continue
            placed = selector.place(page.popleft())
            if placed is not None:
                return placed

    return next_placed


class Batch:
    """Downloads placed objects on one engine. The engine calls into it (job source, owners'
    settlement, progress, ticks) under its one lock, so no two lanes are ever inside at once."""

    def __init__(self, *, bucket: str, request_for: RequestFor, options: BatchOptions, source: PlacedSource,
                 reporter: Reporter) -> None:
        self.bucket = bucket
        self.request_for = request_for
        self.options = options
        self.source = source
        self.reporter = reporter
        self.in_flight: dict[int, tuple[AnyTransfer, ListedObject, str]] = {}

    # -- the job source the engine pulls from ----------------------------------------------

    def jobs(self) -> Iterator[Optional[_ObjectOpener]]:
        while True:
            # Block for more objects only when no transfer is running or waiting: then there is
            # nothing else to do. Otherwise say "nothing yet" and let the engine move bytes.
            item = self.source(not self.in_flight)
            if item is None:
                yield None
                continue
            if item is END:
                return
            opener = self._start(*item)
            if opener is not None:
                yield opener

    def _start(self, listed: ListedObject, path: str, fresh: bool) -> Optional[_ObjectOpener]:
        """An object to download becomes an opener, which an engine lane opens (lock, temp file)
        outside the engine's lock; an unchanged local copy is reported skipped, a folder in the
        way failed. One stat for both, none in a folder that was new or empty (``fresh``)."""
        mtime = listing_time(listed.last_modified)
        if not fresh:
            st = local_status(path)
            if st is not None and stat.S_ISDIR(st.st_mode):
                self.reporter.result(ObjectResult(listed.key, path, FAILED, listed.size, folder_in_the_way(path)))
                return None
            if self.options.skip_unchanged and is_unchanged(st, listed.size, mtime):
                self.reporter.result(ObjectResult(listed.key, path, SKIPPED, listed.size))
                return None
        identity = ObjectIdentity(bucket=self.bucket, key=listed.key, version_id=None, etag=listed.etag,
                                  size=listed.size, last_modified=listed.last_modified, crc64=None)
        transfer = new_transfer(identity, path, build_request=self.request_for(identity),
                                options=self.options.download, mtime=mtime, on_settled=self._settled,
                                dest_checked=True)
        self.in_flight[id(transfer)] = (transfer, listed, path)
        self.reporter.add_total(listed.size)
        return _ObjectOpener(self, transfer)

    def opened(self, transfer: AnyTransfer, jobs: list[RangeJob], error: Optional[Exception]) -> list[RangeJob]:
        _, listed, path = self.in_flight[id(transfer)]
        if error is not None:
            del self.in_flight[id(transfer)]
            self.reporter.add_total(-listed.size)
            self.reporter.result(ObjectResult(listed.key, path, FAILED, listed.size, failure_reason(error)))
            return []
        self.on_bytes(listed.size - sum(job.part.length for job in jobs))  # resumed parts
        transfer.complete_if_nothing_to_fetch(jobs)
        return jobs

    # -- outcomes ------------------------------------------------------------------------------

    def _settled(self, transfer: AnyTransfer) -> None:
        _, listed, path = self.in_flight.pop(id(transfer))
        if transfer.error is None:
            self.reporter.result(ObjectResult(listed.key, path, DOWNLOADED, listed.size))
        else:
            self.reporter.result(ObjectResult(listed.key, path, FAILED, listed.size, failure_reason(transfer.error)))

    def on_bytes(self, nbytes: int) -> None:
        self.reporter.add_consumed(nbytes)

    def tick(self) -> None:
        for transfer, _, _ in list(self.in_flight.values()):
            transfer.tick()

    def abandon_all(self, error: BaseException) -> None:
        for transfer, _, _ in list(self.in_flight.values()):
            transfer.abandon(error)


class _ObjectOpener:
    """One listed object as the engine's JobOpener: ``open`` runs in a lane, outside the engine's
    lock, so that the lanes create and size their objects' temp files in parallel (on a busy
    file system, creating a file costs more than fetching 256 KiB)."""

    __slots__ = ("_batch", "_transfer")

    def __init__(self, batch: Batch, transfer: AnyTransfer) -> None:
        self._batch = batch
        self._transfer = transfer

    def open(self) -> list[RangeJob]:
        return self._transfer.open()

    def opened(self, jobs: list[RangeJob], error: Optional[Exception]) -> list[RangeJob]:
        return self._batch.opened(self._transfer, jobs, error)
