"""One object to one local file: plan, resume, fetch through the engine, verify, publish.

The order is the point: preallocate (ENOSPC before any byte moves) -> fetch every part with its
CRC computed as it lands -> combine the part CRCs -> compare with the server's -> optional fsync
-> rename onto the destination -> delete the resume record. A file that fails any check is
never published.

An object of at most PartSize MiB is one GET (cosfast.transfer.single.SingleGetTransfer); a
larger one is split into ranged parts with a resume record (ObjectTransfer, here).
``new_transfer`` picks.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from typing import Callable, Optional, Union

from cosfast import partwriter
from cosfast.crc64 import crc64_combine, crc64_file
from cosfast.transfer.destination import (CrcMismatchError, DestinationLock, LocalPaths, Settlement, acquire_lock,
                                          check_crc, check_not_folder, explain_failure, progress_reporter,
                                          publish)
from cosfast.transfer.engine import EngineOptions, RangeJob, RequestBuilder, TransferEngine
from cosfast.transfer.errors import TransferError
from cosfast.transfer.plan import MIB, Part, choose_part_size, split
from cosfast.transfer.record import CorruptRecordError, ObjectIdentity, ResumeRecord
from cosfast.transfer.localfs import unlink_quietly
from cosfast.transfer.pagecache import direct_for, recycling_for
from cosfast.transfer.single import SingleGetTransfer

logger = logging.getLogger("cosfast.download")


@dataclass(frozen=True)
class DownloadOptions:
    """How to download one object (the SDK's download_file parameters, in transfer terms)."""

    part_size_mib: int = 20
    max_connections: int = 5
    max_part_count: int = 10000
    enable_crc: bool = False
    record_dir: Optional[str] = None
    use_temp_file: bool = True
    fsync: bool = False
    # Multipart: full stages are written with O_DIRECT as far as the disk keeps up (PartSink);
    # None: only while the disk keeps up with the download (cosfast.transfer.pagecache.direct_for).
    direct_io: Optional[bool] = None
    # False: the temp file's pages are recycled as they are written back (TempFile(recycle=True)),
    # so the download neither fills the page cache nor pays for fresh pages; True keeps them;
    # None decides by the machine (cosfast.transfer.pagecache).
    keep_page_cache: Optional[bool] = None
    # Seconds between resume-record saves: a crash loses at most this much finished work.
    record_interval: float = 1.0
    progress_callback: Optional[Callable[[int, int], None]] = None
    engine: EngineOptions = EngineOptions()

    def engine_options(self, **changes: object) -> EngineOptions:
        """The engine's options for this download: ``engine`` capped at ``max_connections``."""
        return dataclasses.replace(self.engine, **{"max_connections": self.max_connections, **changes})


class _RecordKeeper:
    """Saves a multipart download's resume record at most every ``interval`` seconds while parts
    land.

    Without ``durable`` the record is not synced, and neither are the parts' bytes: a process
    that dies (even by SIGKILL) leaves both in the page cache, and after an OS crash or power
    loss the record may list parts whose bytes never reached the disk. That costs a refetch,
    never a wrong file, because a resumed download reads every recorded part back and checks it
    against its recorded CRC-64 (and a torn record fails its digest). Syncing every second would
    hold the download to the disk's write speed. With ``durable`` (``fsync=True``) the temp file
    is fdatasynced before each save and the record fsynced, so a saved record survives power loss."""

    def __init__(self, record: Optional[ResumeRecord], record_path: str, temp: "partwriter.TempFile",
                 interval: float, durable: bool = False) -> None:
        self.record = record
        self._record_path = record_path
        self._temp = temp
        self._interval = interval
        self._durable = durable
        self._last_save = time.monotonic()
        self._unsaved = False

    def part_done(self, index: int, length: int, crc: int) -> None:
        if self.record is None:
            return
        self.record.parts[index] = (length, crc)
        self._unsaved = True
        self.tick()

    def tick(self) -> None:
        """Saves the record if parts finished since the last save and the interval has passed."""
        if self._unsaved and time.monotonic() - self._last_save >= self._interval:
            self.save()

    def save(self, *, force: bool = False) -> None:
        if self.record is None or not (self._unsaved or force):
            return
        if self._durable:
            self._temp.fdatasync()  # the record then only lists parts whose bytes are on disk
        self.record.save(self._record_path, durable=self._durable)
        self._last_save = time.monotonic()
        self._unsaved = False


class ObjectTransfer(Settlement):
    """One object's download in ranged parts, in steps, so that many objects can share one
    engine run.

    ``begin()`` takes the destination's lock, opens (or resumes) the temp file and returns the
    jobs still to run. The transfer owns those jobs: the engine reports each part to it. When the
    last part lands it verifies, publishes (rename onto the destination, with ``mtime`` set if
    given) and settles with ``error = None``; on the first final failure it cleans up and settles
    with the error. Either way ``on_settled(self)`` is called once, from an engine lane, under the
    engine's lock.
    Work that is interrupted (the engine run raised) must be ended with ``abandon(exc)``."""

    multipart = True

    def __init__(self, identity: ObjectIdentity, dest: str, *, build_request: RequestBuilder,
                 options: DownloadOptions, mtime: Optional[float] = None,
                 on_settled: Optional[Callable[["ObjectTransfer"], None]] = None,
                 dest_checked: bool = False) -> None:
        super().__init__(on_settled)
        self.identity = identity
        self.options = options
        self.mtime = mtime
        self.dest_checked = dest_checked
        self.part_size = choose_part_size(identity.size, options.part_size_mib, options.max_part_count)
        self.paths = LocalPaths.for_destination(dest, identity, options.record_dir)
        self.progress: Optional[Callable[[int], None]] = None
        self._build_request = build_request
        self._lock = DestinationLock(self.paths.lock)
        self._temp: Optional["partwriter.TempFile"] = None
        self._keeper: Optional[_RecordKeeper] = None
        self._parts: list[Part] = []
        self._part_crcs: dict[int, tuple[int, int]] = {}
        self._response_crc64: Optional[str] = None
        self._remaining = 0
        # Bytes of finished parts taken from a resume record instead of fetched by this call.
        self.resumed_bytes = 0

    # -- steps -------------------------------------------------------------------------------

    def begin(self) -> list[RangeJob]:
        """Prepares the local files and returns the jobs to run (none if a resume record covers
        every part: then the object is verified and published at once). Raises (leaving nothing
        behind) if the destination cannot be used."""
        jobs = self.open()
        self.complete_if_nothing_to_fetch(jobs)
        return jobs

    def complete_if_nothing_to_fetch(self, jobs: list[RangeJob]) -> None:
        """The second half of ``begin``, for callers that run ``open`` elsewhere: a download
        that a resume record covers entirely is verified and published now."""
        if not jobs and not self.settled:
            self._complete()

    def open(self) -> list[RangeJob]:
        """``begin`` without its last step: takes the lock, opens the temp file (and resume
        record) and returns the jobs to run. Touches only this transfer's own files, so several
        transfers may open at once from different threads."""
        paths, identity = self.paths, self.identity
        if not self.dest_checked:
            check_not_folder(paths.dest)
        if self.options.record_dir:
            os.makedirs(self.options.record_dir, exist_ok=True)
        acquire_lock(self._lock, paths.dest)
        try:
            record = _usable_record(paths, identity, self.part_size) or \
                ResumeRecord(identity, self.part_size, paths.temp)
            self._parts = split(identity.size, self.part_size)
            self._temp = partwriter.TempFile(paths.temp, identity.size, create=True,
                                             recycle=recycling_for(self.options.keep_page_cache))
            self._part_crcs = dict(record.parts)
            self._keeper = _RecordKeeper(record, paths.record, self._temp, self.options.record_interval,
                                         durable=self.options.fsync)
            self._keeper.save(force=True)  # the record names the temp file before any byte lands
            todo = [p for p in self._parts if p.index not in self._part_crcs]
        except BaseException as exc:
            self._clean_up(exc, keep_for_resume=False)
            raise
        self._remaining = len(todo)
        self.resumed_bytes = identity.size - sum(p.length for p in todo)
        direct = direct_for(self.options.direct_io, self.options.keep_page_cache)
        self.progress = progress_reporter(self.options.progress_callback, identity.size, self.resumed_bytes)
        return [RangeJob(part=p, object_size=identity.size,
                         sink=partwriter.PartSink(self._temp, p.offset, p.length, stage_size=partwriter.DEFAULT_STAGE_SIZE,
                                                  prefetch=True, direct=direct, finish_later=True),
                         build_request=self._build_request, owner=self)
                for p in todo]

    def part_done(self, job: RangeJob) -> None:
        self._part_crcs[job.part.index] = (job.part.length, job.sink.crc)
        if self._response_crc64 is None and job.response is not None:
            self._response_crc64 = job.response.get("x-cos-hash-crc64ecma")
        assert self._keeper is not None
        self._keeper.part_done(job.part.index, job.part.length, job.sink.crc)
        self._remaining -= 1
        if self._remaining == 0:
            self._complete()

    def part_failed(self, job: RangeJob, error: BaseException) -> None:
        self.abandon(error)

    def tick(self) -> None:
        """Saves the resume record when it is due (called while connections stall)."""
        if self._keeper is not None and not self.settled:
            self._keeper.tick()

    def abandon(self, error: BaseException) -> None:
        """Ends an unsettled transfer with ``error``: the temp file is removed, except that a
        download stopped by the network or an interrupt keeps its temp file and resume record
        for the next run."""
        if self.settled:
            return
        keep = isinstance(error, KeyboardInterrupt) or (isinstance(error, TransferError) and error.retryable)
        self._clean_up(error, keep_for_resume=keep)
        self._settle(explain_failure(error, self.identity, self.paths.dest))

    # -- inside ----------------------------------------------------------------------------

    def _complete(self) -> None:
        """Verify, publish, settle. Runs inside the engine loop, so it never raises an Exception."""
        assert self._temp is not None
        try:
            _verify_crc(self.identity, self.identity.crc64 or self._response_crc64, self._parts,
                        self._part_crcs, self.options.enable_crc, self.paths.dest)
            publish(self._temp, self.paths.temp, self.paths.dest, fsync=self.options.fsync, mtime=self.mtime)
        except Exception as exc:
            self.abandon(exc)
            return
        unlink_quietly(self.paths.record)
        self._lock.release()
        self._settle(None)

    def _clean_up(self, error: BaseException, *, keep_for_resume: bool) -> None:
        self.failed = error
        if self._temp is not None:
            if keep_for_resume and self._keeper is not None:
                try:
                    self._keeper.save()
                except OSError as exc:
                    logger.warning("could not save resume record %s: %s", self.paths.record, exc)
                    keep_for_resume = False
            self._temp.close()
        # The temp file and record are this transfer's only while it holds the lock: a transfer
        # stopped before it got the lock must not remove the files of the download that has it.
        if not keep_for_resume and self._lock.held:
            unlink_quietly(self.paths.temp)
            unlink_quietly(self.paths.record)
        self._lock.release()


AnyTransfer = Union[SingleGetTransfer, ObjectTransfer]


def new_transfer(identity: ObjectIdentity, dest: str, *, build_request: RequestBuilder, options: DownloadOptions,
                 mtime: Optional[float] = None, on_settled: Optional[Callable[[AnyTransfer], None]] = None,
                 dest_checked: bool = False) -> AnyTransfer:
    """The transfer for this object, by the SDK's rule: at most PartSize MiB is one GET, larger
    is split into parts. ``dest_checked``: the caller already made sure ``dest`` is not a folder."""
    kind = ObjectTransfer if identity.size > options.part_size_mib * MIB else SingleGetTransfer
    return kind(identity, dest, build_request=build_request, options=options, mtime=mtime,
                on_settled=on_settled, dest_checked=dest_checked)  # type: ignore[arg-type]


def download_object(identity: ObjectIdentity, dest: str, *, build_request: RequestBuilder,
                    options: DownloadOptions, engine: Optional[TransferEngine] = None) -> None:
    """Downloads the object pinned by ``identity`` to ``dest``. Raises TransferError subclasses,
    DownloadError subclasses or OSError; on failure ``dest`` is untouched.

    A resumed download whose object CRC-64 does not match is fetched once more from its start:
    a part kept from an earlier run may hold bytes damaged in transit, which the CRC recorded
    for it (of the bytes received) cannot reveal, and COS has no per-part CRC to tell which."""
    if options.progress_callback is not None:
        options = dataclasses.replace(options, progress_callback=_never_backwards(options.progress_callback))
    try:
        transfer = _download_once(identity, dest, build_request=build_request, options=options, engine=engine)
        if isinstance(transfer.error, CrcMismatchError) and transfer.resumed_bytes:
            logger.warning("%s: %s; the parts kept from an earlier run are discarded and the object is "
                           "downloaded again", dest, transfer.error)
            transfer = _download_once(identity, dest, build_request=build_request, options=options, engine=engine)
    finally:
        partwriter.release_recycled()
    if transfer.error is not None:
        raise transfer.error


def _download_once(identity: ObjectIdentity, dest: str, *, build_request: RequestBuilder,
                   options: DownloadOptions, engine: Optional[TransferEngine]) -> AnyTransfer:
    """One settled transfer of the object (its ``error`` says how it ended)."""
    transfer = new_transfer(identity, dest, build_request=build_request, options=options)
    jobs = transfer.begin()
    try:
        _run(engine, options, jobs, transfer.progress, transfer.tick)
    except BaseException as exc:
        transfer.abandon(exc)
        raise
    return transfer


def _never_backwards(callback: Callable[[int, int], None]) -> Callable[[int, int], None]:
    """The progress callback as a download fetched again from its start must call it: never
    with fewer bytes than it already reported."""
    reported = 0

    def report(consumed: int, total: int) -> None:
        nonlocal reported
        if consumed >= reported:
            reported = consumed
            callback(consumed, total)

    return report


def _run(engine: Optional[TransferEngine], options: DownloadOptions, jobs: list[RangeJob],
         progress: Optional[Callable[[int], None]], tick: Callable[[], None]) -> None:
    if not jobs:
        return
    if engine is not None:
        engine.run(jobs, on_progress=progress, on_tick=tick)
        return
    with TransferEngine(options.engine_options()) as own_engine:
        own_engine.run(jobs, on_progress=progress, on_tick=tick)


def _usable_record(paths: LocalPaths, identity: ObjectIdentity, part_size: int) -> Optional[ResumeRecord]:
    """The resume record if it is for this very object and its finished parts' bytes are still
    what was recorded; parts whose bytes changed on disk are dropped. Stale records are deleted
    with their temp file."""
    try:
        record = ResumeRecord.load(paths.record)
    except CorruptRecordError as exc:
        logger.warning("discarding resume record %s: %s", paths.record, exc)
        record = None
        _discard(paths)
        return None
    if record is None:
        return None
    same = (record.identity == identity and record.part_size == part_size
            and os.path.abspath(record.temp_path) == paths.temp)
    try:
        temp_ok = os.path.getsize(paths.temp) == identity.size
    except OSError:
        temp_ok = False
    if not same or not temp_ok:
        logger.info("resume record %s is for another object version or lost its temp file; starting over",
                    paths.record)
        _discard(paths)
        return None
    part_size_of = dict((p.index, p) for p in split(identity.size, part_size))
    for index, (length, crc) in list(record.parts.items()):
        part = part_size_of.get(index)
        if part is None or part.length != length or crc64_file(paths.temp, offset=part.offset, length=length) != crc:
            logger.warning("part %d of %s does not match its recorded CRC; fetching it again", index, paths.temp)
            del record.parts[index]
    return record


def _discard(paths: LocalPaths) -> None:
    unlink_quietly(paths.record)
    unlink_quietly(paths.temp)


def _verify_crc(identity: ObjectIdentity, expected: Optional[str], parts: list[Part],
                part_crcs: dict[int, tuple[int, int]], enable_crc: bool, dest: str) -> None:
    """Compares the combined part CRCs with ``expected`` (the HEAD's or the GET responses'
    x-cos-hash-crc64ecma)."""
    crc = 0
    for part in parts:
        length, part_crc = part_crcs[part.index]
        crc = crc64_combine(crc, part_crc, length)
    check_crc(identity.key, crc, expected, enable_crc, dest)
