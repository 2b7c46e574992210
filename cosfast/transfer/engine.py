"""The transfer engine: pycurl CurlMulti loops driving many ranged GETs straight into PartSinks.

The engine has one or more *lanes*, each a CurlMulti with its own easy handles and kept-alive
connections, run by one thread (lane 0 by the calling thread). libcurl does the socket work
inside ``perform()`` with the GIL released, and each body chunk goes from libcurl's buffer
through the PartSink's ``pwrite`` (GIL released) into the temp file: no per-chunk task object
and no queue between network and disk. On a machine with several cores, receiving and writing
(the kernel's socket copies and page-cache writes, which dominate the CPU of a download) are
spread over the lanes' threads; one lane alone keeps one core busy and no more.

All lanes pull jobs from one shared source, and everything that touches shared state (the
source, the jobs' owners, the progress and tick callbacks) runs under one lock: owners and
callbacks are never called concurrently, so they need no locking of their own.

The engine knows nothing about COS or the SDK: a job carries a ``build_request`` callable that
returns the URL and the (signed) header lines for the range it is asked for.
"""
from __future__ import annotations

import collections
import heapq
import itertools
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional, Protocol, Union

import pycurl

from cosfast import partwriter
from cosfast.transfer.attempt import Attempt, outcome
from cosfast.transfer.errors import TransferError
from cosfast.transfer.plan import Part
from cosfast.transfer.response import HeaderParser
from cosfast.transfer.retry import RetryPolicy

# libcurl's largest receive buffer is 10 MiB; 1 MiB keeps the write callback rare (one Python
# call per MiB at best) without holding much memory per connection.
DEFAULT_BUFFER_SIZE = 1024 * 1024
# More lanes than this buys nothing: two already keep a 25 Gbit/s link's worth of copies going.
MAX_AUTO_LANES = 4
# How long an idle lane waits before asking a source that said "nothing yet" again.
_IDLE_POLL_SECONDS = 0.005
# How long a lane waits at most before looking again at parts whose last writes are in flight.
_WRITING_POLL_SECONDS = 0.0005

RequestBuilder = Callable[[dict], "tuple[str, list[str]]"]


class Sink(Protocol):
    """What the engine needs of a PartSink (cosfast.partwriter.PartSink)."""

    written: int
    error: Optional[BaseException]
    # Writes of the part's bytes still in flight after its last chunk (a finish_later sink).
    writing: bool

    def __call__(self, chunk: bytes) -> Optional[int]: ...

    def poll(self) -> bool:
        """Collects ended writes without waiting; True once none is in flight."""
        ...


class JobOpener(Protocol):
    """A source item standing for an object whose jobs need slow local work first (taking its
    lock, creating and sizing its temp file): lanes run ``open()`` outside the engine's lock, so
    several objects are opened at once, then ``opened()`` under it."""

    def open(self) -> "list[RangeJob]":
        """The object's jobs; may raise (the error goes to ``opened``)."""
        ...

    def opened(self, jobs: "list[RangeJob]", error: Optional[Exception]) -> "list[RangeJob]":
        """Bookkeeping after ``open()`` (under the lock); returns the jobs to run."""
        ...


class JobOwner(Protocol):
    """The object a job belongs to; told when each of its parts ends."""

    failed: Optional[BaseException]

    def part_done(self, job: "RangeJob") -> None: ...

    def part_failed(self, job: "RangeJob", error: BaseException) -> None: ...


@dataclass(frozen=True)
class EngineOptions:
    """Knobs of one engine run."""

    max_connections: int = 5
    buffer_size: int = DEFAULT_BUFFER_SIZE
    # A part that moves less than low_speed_limit bytes/s for low_speed_time seconds is a stalled
    # connection: abort and retry it. (No whole-transfer timeout: big parts on slow links are fine.)
    low_speed_limit: int = 1024
    low_speed_time: int = 30
    connect_timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # How often on_progress may be called while bytes flow.
    progress_interval: float = 0.1
    # Applies the client's TLS / proxy / user-agent options to a fresh handle.
    configure_curl: Optional[Callable[[pycurl.Curl], None]] = None
    # Threads (each with its own CurlMulti) sharing the max_connections transfers; None: one per
    # CPU core this process may use, at most MAX_AUTO_LANES and never more than max_connections.
    lanes: Optional[int] = None

    def lane_count(self) -> int:
        if self.lanes is not None:
            return max(1, min(self.lanes, self.max_connections))
        return max(1, min(_usable_cpus(), MAX_AUTO_LANES, self.max_connections))


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass(eq=False)
class RangeJob:
    """One part of one object: fetch bytes [part.offset, part.end) into ``sink``.

    ``whole_object`` jobs fetch a small object with a plain GET (status 200) on the first attempt;
    a retry after a partial body asks for the rest with a Range like any other part.
    """

    part: Part
    object_size: int
    sink: Sink
    build_request: RequestBuilder
    owner: JobOwner
    whole_object: bool = False
    attempts: int = 0
    last_error: Optional[BaseException] = None
    # The head of the response that delivered the part (its x-cos-hash-crc64ecma, ETag, ...).
    response: Optional[HeaderParser] = None

    def range_header(self) -> Optional[str]:
        """The Range for the next attempt, from the first byte not yet written."""
        first = self.part.offset + self.sink.written
        if self.whole_object and first == 0:
            return None
        return f"bytes={first}-{self.part.end - 1}"


class _SharedRun:
    """What the lanes of one ``run()`` share: the job source, the jobs of opened objects not yet
    started, the lock around every call into shared code, and the stop flag set when any lane
    fails."""

    def __init__(self, jobs: Iterable[Union[RangeJob, JobOpener, None]]) -> None:
        self.lock = threading.RLock()
        self.stop = threading.Event()
        self._source: Iterator[Union[RangeJob, JobOpener, None]] = iter(jobs)
        self._pending: collections.deque[RangeJob] = collections.deque()
        self._exhausted = False

    @property
    def drained(self) -> bool:
        """True once the source is exhausted and every job it gave has been taken."""
        return self._exhausted and not self._pending

    def next_job(self) -> Optional[RangeJob]:
        """The next job whose owner has not failed; None for "nothing ready now" (see
        ``drained``). Openers met on the way are opened by the calling lane, outside the lock."""
        while True:
            with self.lock:
                item = self._next_item()
                if item is None or isinstance(item, RangeJob):
                    return item
            try:
                jobs, error = item.open(), None
            except Exception as exc:  # the opener reports it; the run goes on
                jobs, error = [], exc
            with self.lock:
                self._pending.extend(item.opened(jobs, error))

    def _next_item(self) -> Union[RangeJob, JobOpener, None]:
        while self._pending:
            job = self._pending.popleft()
            if job.owner.failed is None:
                return job
        while not self._exhausted:
            try:
                item = next(self._source)
            except StopIteration:
                self._exhausted = True
                return None
            if item is None:
                return None
            if not isinstance(item, RangeJob) or item.owner.failed is None:
                return item
        return None

    def guarded(self, callback: Optional[Callable]) -> Optional[Callable]:
        """``callback`` made to run under the shared lock."""
        if callback is None:
            return None
        lock = self.lock

        def call(*args: object) -> None:
            with lock:
                callback(*args)

        return call


class _Lane:
    """One CurlMulti with a bounded free-list of reused easy handles, and the loop that drives it.
    Used by one thread at a time."""

    def __init__(self, options: EngineOptions, max_connections: int) -> None:
        self.options = options
        self.limit = max_connections
        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, max_connections)
        self._multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, max_connections)
        self._multi.setopt(pycurl.M_MAXCONNECTS, max_connections)
        self._free: list[pycurl.Curl] = []
        self._all_handles: list[pycurl.Curl] = []
        # Jobs whose bytes all arrived but whose sink still writes some (see _finish).
        self._writing: list[RangeJob] = []

    # -- handles ---------------------------------------------------------------------------

    def _take_handle(self) -> pycurl.Curl:
        if self._free:
            return self._free.pop()
        curl = pycurl.Curl()
        opts = self.options
        curl.setopt(pycurl.NOSIGNAL, 1)
        curl.setopt(pycurl.BUFFERSIZE, opts.buffer_size)
        curl.setopt(pycurl.TCP_NODELAY, 1)
        curl.setopt(pycurl.FOLLOWLOCATION, 0)
        curl.setopt(pycurl.CONNECTTIMEOUT_MS, int(opts.connect_timeout * 1000))
        curl.setopt(pycurl.LOW_SPEED_LIMIT, opts.low_speed_limit)
        curl.setopt(pycurl.LOW_SPEED_TIME, opts.low_speed_time)
        # The client's own settings (TLS, proxy, its Timeout as stall limit) win over the defaults.
        if opts.configure_curl is not None:
            opts.configure_curl(curl)
        self._all_handles.append(curl)
        return curl

    def close(self) -> None:
        for curl in self._all_handles:
            curl.close()
        self._all_handles.clear()
        self._free.clear()
        self._multi.close()

    # -- the loop --------------------------------------------------------------------------

    def run(self, shared: _SharedRun, on_progress: Optional[Callable[[int], None]],
            on_tick: Optional[Callable[[], None]]) -> None:
        """Runs jobs from ``shared`` until the source is exhausted and this lane's transfers and
        retries are over, or until ``shared.stop`` is set. The callbacks are already guarded."""
        retry_heap: list[tuple[float, int, RangeJob]] = []  # (not_before, seq, job)
        seq = itertools.count()
        active: dict[int, tuple[pycurl.Curl, Attempt]] = {}
        progress = _ProgressMeter(on_progress, self.options.progress_interval)
        ticker = _Ticker(on_tick, self.options.progress_interval)
        lock = shared.lock

        def fill() -> bool:
            """Starts jobs while there is room; False if the source had nothing ready."""
            while len(active) < self.limit:
                if retry_heap and retry_heap[0][0] <= time.monotonic():
                    job = heapq.heappop(retry_heap)[2]
                    if job.owner.failed is not None:
                        continue
                else:
                    job = shared.next_job()
                    if job is None:
                        return False
                curl, attempt = self._start(job)
                active[id(curl)] = (curl, attempt)
                progress.track(job.sink)
            return True

        self._writing = []
        try:
            while not shared.stop.is_set():
                ready = fill()
                if self._writing:
                    self._finish_written(lock)
                if not active:
                    if self._writing:
                        time.sleep(_WRITING_POLL_SECONDS)
                        continue
                    if retry_heap:
                        # Bounded, so a source that yielded None is asked again soon.
                        time.sleep(min(self.options.progress_interval,
                                       max(0.0, retry_heap[0][0] - time.monotonic())))
                        continue
                    if shared.drained:
                        break
                    if not ready:
                        # Other lanes' objects are still being set up or listed: wait, don't spin.
                        time.sleep(_IDLE_POLL_SECONDS)
                    continue
                self._perform()
                self._drain(active, retry_heap, seq, progress, lock)
                self._cancel_failed_owners(active, progress)
                progress.tick()
                ticker.tick()
                # Replace the transfers that just ended before waiting: with small objects many
                # end per round, and waiting first would leave their connections idle.
                fill()
                if active:
                    self._wait(retry_heap)
        finally:
            for curl, attempt in active.values():
                self._multi.remove_handle(curl)
                self._release(curl)
            progress.finish()

    def _start(self, job: RangeJob) -> tuple[pycurl.Curl, Attempt]:
        curl = self._take_handle()
        range_asked = job.range_header()
        extra = {"Range": range_asked} if range_asked else {}
        url, header_lines = job.build_request(extra)
        attempt = Attempt(job, range_asked)
        job.attempts += 1
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.HTTPHEADER, header_lines)
        curl.setopt(pycurl.HEADERFUNCTION, attempt.on_header)
        attempt.writer = partwriter.bind_writer(curl, job.sink, attempt.write)
        self._multi.add_handle(curl)
        return curl, attempt

    def _release(self, curl: pycurl.Curl) -> None:
        # Drop the callbacks' references to the attempt (and so to its sink and temp file).
        curl.setopt(pycurl.HEADERFUNCTION, _discard)
        curl.setopt(pycurl.WRITEFUNCTION, _discard)
        self._free.append(curl)

    def _perform(self) -> None:
        while True:
            ret, _ = self._multi.perform()
            if ret != pycurl.E_CALL_MULTI_PERFORM:
                return

    def _wait(self, retry_heap: list) -> None:
        timeout_ms = self._multi.timeout()
        timeout = 1.0 if timeout_ms < 0 else timeout_ms / 1000.0
        timeout = min(timeout, _WRITING_POLL_SECONDS if self._writing else self.options.progress_interval)
        if retry_heap:
            timeout = min(timeout, max(0.0, retry_heap[0][0] - time.monotonic()))
        if timeout > 0:
            self._multi.select(timeout)

    def _finish_written(self, lock: threading.RLock) -> None:
        """Reports the parts whose background writes have ended: done, or failed with the
        write's error."""
        still = []
        for job in self._writing:
            if not job.sink.poll():
                still.append(job)
            elif job.owner.failed is None:
                with lock:
                    if job.sink.error is not None:
                        job.owner.part_failed(job, job.sink.error)
                    else:
                        job.owner.part_done(job)
        self._writing = still

    def _cancel_failed_owners(self, active: dict, progress: "_ProgressMeter") -> None:
        """Stops the transfers of objects that already failed: their bytes would be thrown away."""
        for key, (curl, attempt) in list(active.items()):
            if attempt.job.owner.failed is not None:
                del active[key]
                self._multi.remove_handle(curl)
                self._release(curl)
                progress.untrack(attempt.job.sink)

    def _drain(self, active: dict, retry_heap: list, seq: Iterator[int], progress: "_ProgressMeter",
               lock: threading.RLock) -> None:
        while True:
            queued, ok_list, err_list = self._multi.info_read()
            for curl in ok_list:
                self._finish(curl, None, active, retry_heap, seq, progress, lock)
            for curl, errno, errmsg in err_list:
                self._finish(curl, (errno, errmsg), active, retry_heap, seq, progress, lock)
            if queued == 0:
                return

    def _finish(self, curl: pycurl.Curl, curl_error: Optional[tuple[int, str]], active: dict,
                retry_heap: list, seq: Iterator[int], progress: "_ProgressMeter",
                lock: threading.RLock) -> None:
        _, attempt = active.pop(id(curl))
        self._multi.remove_handle(curl)
        self._release(curl)
        job = attempt.job
        progress.untrack(job.sink)
        error = outcome(attempt, curl_error)
        if error is None:
            job.response = attempt.head
            if job.sink.writing:
                # Every byte arrived, but the sink still writes some in the background: the
                # part is done when they are in the file (_finish_written), not before.
                self._writing.append(job)
                return
            with lock:
                job.owner.part_done(job)
            return
        job.last_error = error
        if job.owner.failed is not None:
            return
        if isinstance(error, TransferError) and error.retryable and job.attempts < self.options.retry.max_attempts:
            delay = self.options.retry.delay(job.attempts, error.retry_after)
            heapq.heappush(retry_heap, (time.monotonic() + delay, next(seq), job))
            return
        with lock:
            job.owner.part_failed(job, error)


class TransferEngine:
    """Runs RangeJobs with at most ``max_connections`` transfers at once over kept-alive
    connections, spread over ``options.lane_count()`` lanes. Reusable: the lanes (and so the
    connections) live until ``close()``."""

    def __init__(self, options: EngineOptions) -> None:
        if options.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.options = options
        count = options.lane_count()
        # The connection cap is shared out so that the lanes together never exceed it.
        share, extra = divmod(options.max_connections, count)
        self._lanes = [_Lane(options, share + (1 if i < extra else 0)) for i in range(count)]
        self._closed = False

    @property
    def lanes(self) -> int:
        return len(self._lanes)

    def close(self) -> None:
        """Closes every handle and connection; idempotent."""
        if self._closed:
            return
        self._closed = True
        for lane in self._lanes:
            lane.close()

    def __enter__(self) -> "TransferEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, jobs: Iterable[Union[RangeJob, JobOpener, None]], *, on_progress: Optional[Callable[[int], None]] = None,
            on_tick: Optional[Callable[[], None]] = None) -> None:
        """Runs every job to success or final failure, reporting each to its owner.

        Jobs are taken from ``jobs`` lazily, in the order given (ascending offsets for one object),
        so a generator can still be listing while the first transfers run. A source may also
        yield a JobOpener, whose jobs are run once a lane has opened it, or None to say "nothing
        ready yet" (the engine asks again soon); it should block instead when it knows no
        transfer of its is running or waiting to retry. The source, the openers' ``opened``, the
        owners' ``part_done``/``part_failed``, ``on_progress`` (the number of new body bytes
        written since its last call) and ``on_tick`` (about every ``progress_interval`` seconds,
        even when no byte moves, to save resume records while a connection stalls) are called one
        at a time, from the lanes' threads (lane 0 is the calling thread). The jobs'
        ``build_request`` and the openers' ``open`` are called from the lanes concurrently. A list
        of jobs shorter than the lane count uses fewer lanes."""
        if self._closed:
            raise RuntimeError("engine is closed")
        shared = _SharedRun(jobs)
        on_progress, on_tick = shared.guarded(on_progress), shared.guarded(on_tick)
        lanes = self._lanes
        if isinstance(jobs, (list, tuple)):
            lanes = lanes[:max(1, len(jobs))]
        errors: list[BaseException] = []

        def run_lane(lane: _Lane) -> None:
            try:
                lane.run(shared, on_progress, on_tick)
            except BaseException as exc:  # re-raised by the calling thread
                errors.append(exc)
                shared.stop.set()

        helpers = [threading.Thread(target=run_lane, args=(lane,), name=f"cosfast-lane-{i + 1}", daemon=True)
                   for i, lane in enumerate(lanes[1:])]
        for thread in helpers:
            thread.start()
        try:
            lanes[0].run(shared, on_progress, on_tick)
        except BaseException:
            shared.stop.set()
            raise
        finally:
            for thread in helpers:
                thread.join()
        if errors:
            raise errors[0]


def _discard(data: bytes) -> None:
    return None


class _Ticker:
    """Calls a callback at most once per interval."""

    def __init__(self, callback: Optional[Callable[[], None]], interval: float) -> None:
        self._callback = callback
        self._interval = interval
        self._last = time.monotonic()

    def tick(self) -> None:
        if self._callback is None:
            return
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._callback()


class _ProgressMeter:
    """Turns sinks' growing ``written`` counters into throttled, monotonic byte deltas."""

    def __init__(self, callback: Optional[Callable[[int], None]], interval: float) -> None:
        self._callback = callback
        self._interval = interval
        self._seen: dict[int, tuple[Sink, int]] = {}
        self._pending = 0
        self._last = 0.0

    def track(self, sink: Sink) -> None:
        if self._callback is not None:
            self._seen[id(sink)] = (sink, sink.written)

    def untrack(self, sink: Sink) -> None:
        if self._callback is None:
            return
        entry = self._seen.pop(id(sink), None)
        if entry is not None:
            self._pending += sink.written - entry[1]

    def tick(self, force: bool = False) -> None:
        if self._callback is None:
            return
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        delta = self._pending
        self._pending = 0
        for key, (sink, seen) in self._seen.items():
            delta += sink.written - seen
            self._seen[key] = (sink, sink.written)
        if delta:
            self._callback(delta)

    def finish(self) -> None:
        self.tick(force=True)
