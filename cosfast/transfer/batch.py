"""Many objects at once: every object under a COS prefix into a local folder.

The flow: a background thread pages through the listing (List Objects v1, marker) into a bounded
queue; the engine's lanes (the calling thread and, on several cores, lane threads), one at a
time, turn each listed object into its jobs (one whole-object GET for small objects, ranged
parts for large ones, as ``download_file`` decides), pulled lazily by ONE TransferEngine, so
all objects share its kept-alive connections and its one cap on concurrent transfers, and the
first downloads run while later pages are still being listed. Each object is
verified and renamed into place like ``download_file`` (ObjectTransfer); a failed object is
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
import dataclasses
import email.utils
import fnmatch
import os
import queue
import re
import stat
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

from cosfast.cos_exception import digest_xml
from cosfast.transfer.download import DownloadOptions, ObjectTransfer
from cosfast.transfer.engine import RangeJob, RequestBuilder, TransferEngine
from cosfast.transfer.errors import TransferError
from cosfast.transfer.keypath import KeyPlacementError, LocalTree, Placement, strip_prefix
from cosfast.transfer.record import ObjectIdentity

__all__ = ["ListedObject", "ListingPage", "ObjectResult", "BatchSummary", "BatchOptions", "download_prefix",
           "DOWNLOADED", "SKIPPED", "FAILED", "FOLDER"]

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
    # Listed objects waiting for a connection; bounds memory however large the prefix is.
    queue_size: int = 4096


ListPage = Callable[[str], ListingPage]  # marker -> page
RequestFor = Callable[[ObjectIdentity], RequestBuilder]  # a request builder pinned to the identity's ETag


def listing_time(value: str) -> Optional[float]:
    """Seconds since the epoch of a listing's LastModified (ISO 8601, UTC) or an HTTP date."""
    match = _ISO8601.match(value or "")
    if match:
        return float(calendar.timegm(tuple(int(g) for g in match.groups()) + (0, 0, 0)))
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def is_unchanged(path: str, size: int, mtime: Optional[float]) -> bool:
    """True if ``path`` is a regular file with this size and (to the second) this mtime."""
    if mtime is None:
        return False
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == size and int(st.st_mtime) == int(mtime)


def failure_reason(error: BaseException) -> str:
    """One line saying why an object failed; COS's error code and message when it sent them."""
    if isinstance(error, TransferError) and error.status is not None and error.body:
        digest = digest_xml(error.body)
        if isinstance(digest, dict) and digest.get("code"):
            return f"{digest['code']}: {digest.get('message', '')} (HTTP {error.status})"
    return str(error) or type(error).__name__


_END = object()


class _Lister(threading.Thread):
    """Pages through the listing into a bounded queue; ends it with _END (after ``error`` if any)."""

    def __init__(self, list_page: ListPage, queue_size: int) -> None:
        super().__init__(name="cosfast-lister", daemon=True)
        self.queue: "queue.Queue[object]" = queue.Queue(queue_size)
        self.error: Optional[BaseException] = None
        self._list_page = list_page
        self._stop = threading.Event()

    def run(self) -> None:
        marker = ""
        try:
            while not self._stop.is_set():
                page = self._list_page(marker)
                for listed in page.objects:
                    self._put(listed)
                if page.next_marker is None:
                    break
                if page.next_marker <= marker:
                    raise RuntimeError(f"the listing went backwards (marker {page.next_marker!r} after {marker!r})")
                marker = page.next_marker
        except BaseException as exc:  # handed to the downloading thread, which raises it
            self.error = exc
        finally:
            self._put(_END)

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self.queue.put(item, timeout=_PUT_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def stop(self) -> None:
        self._stop.set()


class _Batch:
    """The state of one download_prefix run. The engine calls into it (job source, owners'
    settlement, progress, ticks) under its one lock, so no two lanes are ever inside at once."""

    def __init__(self, *, bucket: str, prefix: str, local_dir: str, request_for: RequestFor,
                 options: BatchOptions, lister: _Lister) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.tree = LocalTree(local_dir, prefix)
        self.request_for = request_for
        self.options = options
        self.lister = lister
        self.summary = BatchSummary()
        self.in_flight: dict[int, tuple[ObjectTransfer, ListedObject, Placement]] = {}
        self.consumed = 0
        self.total = 0

    # -- the job source the engine pulls from ----------------------------------------------

    def jobs(self) -> Iterator[Optional[_ObjectOpener]]:
        while True:
            # Block for the listing only when no transfer is running or waiting: then there is
            # nothing else to do. Otherwise say "nothing yet" and let the engine move bytes.
            try:
                item = self.lister.queue.get(block=not self.in_flight)
            except queue.Empty:
                yield None
                continue
            if item is _END:
                return
            assert isinstance(item, ListedObject)
            opener = self._start(item)
            if opener is not None:
                yield opener

    def _start(self, listed: ListedObject) -> Optional[_ObjectOpener]:
        """Decides what to do with a listed key; an object to download becomes an opener, which
        an engine lane opens (lock, temp file) outside the engine's lock."""
        if not self._wanted(listed.key):
            return None
        try:
            placement = self.tree.place(listed.key)
            self.tree.make_folder(placement)
        except KeyPlacementError as exc:
            self._report(ObjectResult(listed.key, None, FAILED, listed.size, exc.reason))
            return None
        if placement.folder:
            self._report(ObjectResult(listed.key, placement.path, FOLDER, 0))
            return None
        mtime = listing_time(listed.last_modified)
        if self.options.skip_unchanged and is_unchanged(placement.path, listed.size, mtime):
            self._report(ObjectResult(listed.key, placement.path, SKIPPED, listed.size))
            return None
        identity = ObjectIdentity(bucket=self.bucket, key=listed.key, version_id=None, etag=listed.etag,
                                  size=listed.size, last_modified=listed.last_modified, crc64=None)
        transfer = ObjectTransfer(identity, placement.path, build_request=self.request_for(identity),
                                  options=self.options.download, mtime=mtime, on_settled=self._settled)
        self.in_flight[id(transfer)] = (transfer, listed, placement)
        self._add_total(listed.size)
        return _ObjectOpener(self, transfer)

    def opened(self, transfer: ObjectTransfer, jobs: list[RangeJob], error: Optional[Exception]) -> list[RangeJob]:
        _, listed, placement = self.in_flight[id(transfer)]
        if error is not None:
            del self.in_flight[id(transfer)]
            self._add_total(-listed.size)
            self._report(ObjectResult(listed.key, placement.path, FAILED, listed.size, failure_reason(error)))
            return []
        self.on_bytes(listed.size - sum(job.part.length for job in jobs))  # resumed parts
        transfer.complete_if_nothing_to_fetch(jobs)
        return jobs

    def _wanted(self, key: str) -> bool:
        relative = strip_prefix(key, self.prefix)
        opts = self.options
        if opts.include and not any(fnmatch.fnmatchcase(relative, p) for p in opts.include):
            return False
        return not any(fnmatch.fnmatchcase(relative, p) for p in opts.exclude)

    # -- outcomes ------------------------------------------------------------------------------

    def _settled(self, transfer: ObjectTransfer) -> None:
        _, listed, placement = self.in_flight.pop(id(transfer))
        if transfer.error is None:
            self._report(ObjectResult(listed.key, placement.path, DOWNLOADED, listed.size))
        else:
            self._report(ObjectResult(listed.key, placement.path, FAILED, listed.size,
                                      failure_reason(transfer.error)))

    def _report(self, result: ObjectResult) -> None:
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
        if self.options.object_callback is not None:
            self.options.object_callback(result)

    def _add_total(self, nbytes: int) -> None:
        self.total += nbytes
        self._progress()

    def on_bytes(self, nbytes: int) -> None:
        if nbytes:
            self.consumed += nbytes
            self._progress()

    def _progress(self) -> None:
        if self.options.progress_callback is not None:
            self.options.progress_callback(self.consumed, self.total)

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

    def __init__(self, batch: _Batch, transfer: ObjectTransfer) -> None:
        self._batch = batch
        self._transfer = transfer

    def open(self) -> list[RangeJob]:
        return self._transfer.open()

    def opened(self, jobs: list[RangeJob], error: Optional[Exception]) -> list[RangeJob]:
        return self._batch.opened(self._transfer, jobs, error)


def download_prefix(*, bucket: str, prefix: str, local_dir: str, list_page: ListPage, request_for: RequestFor,
                    options: BatchOptions, engine: Optional[TransferEngine] = None) -> BatchSummary:
    """Downloads every listed object under ``prefix`` into ``local_dir``; see the module docstring.

    Raises only for the run as a whole (the listing failed, an interrupt); per-object failures are
    in the summary. ``engine``: a caller's engine to reuse, else one is made for this run."""
    start = time.monotonic()
    os.makedirs(local_dir, exist_ok=True)
    lister = _Lister(list_page, options.queue_size)
    batch = _Batch(bucket=bucket, prefix=prefix, local_dir=local_dir, request_for=request_for,
                   options=options, lister=lister)
    own_engine = engine is None
    if engine is None:
        engine = TransferEngine(dataclasses.replace(options.download.engine,
                                                    max_connections=options.download.max_connections))
    lister.start()
    try:
        engine.run(batch.jobs(), on_progress=batch.on_bytes, on_tick=batch.tick)
    except BaseException as exc:
        batch.abandon_all(exc)
        raise
    finally:
        lister.stop()
        if own_engine:
            engine.close()
    if lister.error is not None:
        raise lister.error
    batch.summary.seconds = time.monotonic() - start
    return batch.summary

