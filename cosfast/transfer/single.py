"""One object no larger than PartSize, downloaded with one GET: the path of every small object of
a batch and of download_file's small objects.

The same guarantees as the multipart path (cosfast.transfer.download.ObjectTransfer), with less
bookkeeping, because in a batch of small objects per-object Python is what limits the rate:
lock and preallocate the temp file (its flock keeps a second download to the same destination
out, and no lock file is created per object), fetch into one PartSink (its CRC-64 computed as
the bytes land; a retry continues from the first missing byte), compare the CRC with the
response's x-cos-hash-crc64ecma, rename into place. There is no resume record: a small object
that was cut off is fetched again.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Optional

from cosfast import partwriter
from cosfast.transfer.destination import (DestinationLock, Settlement, TempFileLock, acquire_lock, check_crc,
                                          check_not_folder, explain_failure, lock_path_for, progress_reporter,
                                          publish, temp_path_for)
from cosfast.transfer.engine import RangeJob, RequestBuilder
from cosfast.transfer.localfs import unlink_quietly
from cosfast.transfer.pagecache import recycling_for
from cosfast.transfer.plan import Part
from cosfast.transfer.record import ObjectIdentity

if TYPE_CHECKING:
    from cosfast.transfer.download import DownloadOptions

__all__ = ["SingleGetTransfer", "WRITE_PIECE"]

# A small object is written in pieces of this size. The page cache gives a write a folio as
# large as the write (ext4 has large folios since Linux 6.16): a 256 KiB write asks for 64
# contiguous pages, which the kernel takes from its large free blocks, and on a VM that hands
# freed memory back to its host (free page reporting) those are the blocks the host must fault
# in again. Folios of up to 8 pages (32 KiB) come from the small free fragments that stay in
# the guest and from the per-CPU page lists. Measured here, 2000 x 256 KiB from nginx with the
# pages kept: written whole, 2318 files/s at 1.5 CPU s in the state the bench runs in, and
# 16 KiB pieces 4338 files/s at 0.70 (curl -Z, which writes 16 KiB at a time, 4624 at 0.43);
# 64 KiB pieces were slow in one round of four. Where fresh pages are cheap, 32 KiB pieces ran
# 0.96x the speed of whole writes (8 pwrites instead of one).
WRITE_PIECE = 32 * 1024


class SingleGetTransfer(Settlement):
    """One small object's download, in the steps a batch runs it in (the interface of
    ObjectTransfer): ``open()`` locks and sizes the temp file and returns the one job; the engine
    reports the job to ``part_done``/``part_failed``; the transfer then publishes or cleans up and
    settles, calling ``on_settled(self)`` once, under the engine's lock. Work that is interrupted
    is ended with ``abandon(exc)``."""

    multipart = False
    resumed_bytes = 0  # a single GET never resumes from a record

    def __init__(self, identity: ObjectIdentity, dest: str, *, build_request: RequestBuilder,
                 options: "DownloadOptions", mtime: Optional[float] = None,
                 on_settled: Optional[Callable[["SingleGetTransfer"], None]] = None,
                 dest_checked: bool = False) -> None:
        super().__init__(on_settled)
        self.identity = identity
        self.options = options
        self.mtime = mtime
        self.dest_checked = dest_checked
        self.dest = os.path.abspath(dest)
        self.temp_path = temp_path_for(self.dest) if options.use_temp_file else self.dest
        self.progress: Optional[Callable[[int], None]] = None
        self._build_request = build_request
        self._lock = TempFileLock(self.temp_path, self.dest) if options.use_temp_file \
            else DestinationLock(lock_path_for(self.dest))
        self._temp: Optional["partwriter.TempFile"] = None

    def begin(self) -> list[RangeJob]:
        """Prepares the local files and returns the one job to run; raises (leaving nothing
        behind) if the destination cannot be used."""
        return self.open()

    def complete_if_nothing_to_fetch(self, jobs: list[RangeJob]) -> None:
        """Nothing to do: a single GET always has its one job to run."""

    def open(self) -> list[RangeJob]:
        """Takes the lock and opens the temp file; touches only this transfer's own files, so
        several transfers may open at once from different threads."""
        size = self.identity.size
        if not self.dest_checked:
            check_not_folder(self.dest)
        acquire_lock(self._lock, self.dest)
        try:
            # An object of at most one default stage (1 MiB) is written within moments of its
            # first byte: preallocating it buys no early ENOSPC worth having and costs an
            # fallocate, and on ext4 an unwritten-extent conversion at writeback (2000 x 256 KiB:
            # 0.93x the time).
            self._temp = partwriter.TempFile(self.temp_path, size, create=True, fd=self._lock.temp_fd,
                                             preallocate=size > partwriter.DEFAULT_STAGE_SIZE,
                                             recycle=recycling_for(self.options.keep_page_cache))
        except BaseException as exc:
            self._clean_up(exc)
            raise
        self.progress = progress_reporter(self.options.progress_callback, size, 0)
        # Always through the page cache: written direct, 2000 x 256 KiB from nginx ran 0.66-0.69x
        # as fast (the disk takes each object slower than the page cache, in the background or not).
        sink = partwriter.PartSink(self._temp, 0, size, stage_size=WRITE_PIECE, prefetch=False)
        return [RangeJob(part=Part(0, 0, size), object_size=size, sink=sink, build_request=self._build_request,
                         owner=self, whole_object=True)]

    def part_done(self, job: RangeJob) -> None:
        """The GET delivered every byte: verify, publish, settle. Runs inside the engine loop, so
        it never raises an Exception."""
        assert self._temp is not None
        expected = self.identity.crc64
        if expected is None and job.response is not None:
            expected = job.response.get("x-cos-hash-crc64ecma")
        try:
            check_crc(self.identity.key, job.sink.crc, expected, self.options.enable_crc, self.dest)
            publish(self._temp, self.temp_path, self.dest, fsync=self.options.fsync, mtime=self.mtime)
        except Exception as exc:
            self.abandon(exc)
            return
        self._lock.release()
        self._settle(None)

    def part_failed(self, job: RangeJob, error: BaseException) -> None:
        self.abandon(error)

    def tick(self) -> None:
        """No resume record to save."""

    def abandon(self, error: BaseException) -> None:
        """Ends an unsettled transfer with ``error``; its temp file is removed."""
        if self.settled:
            return
        self._clean_up(error)
        self._settle(explain_failure(error, self.identity, self.dest))

    def _clean_up(self, error: BaseException) -> None:
        self.failed = error
        if self._temp is not None:
            self._temp.close()
        # The temp file is this transfer's only while it holds the lock: a transfer stopped
        # before it got the lock must not remove the file of the download that has it.
        if self._lock.held:
            unlink_quietly(self.temp_path)
        self._lock.release()
