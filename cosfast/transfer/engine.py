"""The transfer engine: one pycurl CurlMulti driving many ranged GETs straight into PartSinks.

Everything runs in the calling thread: libcurl does the socket work inside ``perform()``, and
each body chunk goes from libcurl's buffer through the PartSink's ``pwrite`` (GIL released) into
the temp file. There is no per-chunk task object and no queue between network and disk.

The engine knows nothing about COS or the SDK: a job carries a ``build_request`` callable that
returns the URL and the (signed) header lines for the range it is asked for.
"""
from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional, Protocol

import pycurl

from cosfast.transfer.errors import (
    ObjectChangedError,
    ProtocolViolationError,
    RetryableTransferError,
    ServerRefusedError,
    TransferError,
)
from cosfast.transfer.plan import Part
from cosfast.transfer.response import HeaderParser, parse_content_range, parse_decimal
from cosfast.transfer.retry import RETRYABLE_STATUS, RetryPolicy, parse_retry_after

# libcurl's largest receive buffer is 10 MiB; 1 MiB keeps the write callback rare (one Python
# call per MiB at best) without holding much memory per connection.
DEFAULT_BUFFER_SIZE = 1024 * 1024
# Error bodies are small XML documents; keep at most this much of one.
MAX_ERROR_BODY = 64 * 1024

# libcurl errors that say the network, not the request, failed: worth retrying.
RETRYABLE_CURL_ERRORS = frozenset({
    pycurl.E_COULDNT_CONNECT,
    pycurl.E_COULDNT_RESOLVE_HOST,
    pycurl.E_OPERATION_TIMEDOUT,
    pycurl.E_PARTIAL_FILE,
    pycurl.E_RECV_ERROR,
    pycurl.E_SEND_ERROR,
    pycurl.E_GOT_NOTHING,
    pycurl.E_SSL_CONNECT_ERROR,
    getattr(pycurl, "E_HTTP2", 16),
    getattr(pycurl, "E_HTTP2_STREAM", 92),
})

RequestBuilder = Callable[[dict], "tuple[str, list[str]]"]


class Sink(Protocol):
    """What the engine needs of a PartSink (cosfast.partwriter.PartSink)."""

    written: int
    error: Optional[BaseException]

    def __call__(self, chunk: bytes) -> Optional[int]: ...


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


class _Attempt:
    """State of one HTTP exchange for one job: the response head and where the body goes."""

    __slots__ = ("job", "head", "range_asked", "accept_body", "error_body", "violation", "write")

    def __init__(self, job: RangeJob, range_asked: Optional[str]) -> None:
        self.job = job
        self.head = HeaderParser()
        self.range_asked = range_asked
        self.accept_body = False
        self.error_body = bytearray()
        self.violation: Optional[TransferError] = None
        sink = job.sink

        def write(chunk: bytes) -> Optional[int]:
            if self.accept_body:
                return sink(chunk)
            if len(self.error_body) < MAX_ERROR_BODY:
                self.error_body += chunk[: MAX_ERROR_BODY - len(self.error_body)]
            return None

        self.write = write

    def on_header(self, line: bytes) -> Optional[int]:
        self.head.feed(line)
        if self.head.complete and not self.accept_body and self.violation is None:
            self.accept_body = self._head_is_the_data_asked()
            if self.violation is not None:
                return -1  # abort: the body is not the bytes we asked for
        return None

    def _head_is_the_data_asked(self) -> bool:
        """True if the body that follows is exactly the bytes asked; sets ``violation`` when the
        server answered with something else in a success status."""
        job, head = self.job, self.head
        first = job.part.offset + job.sink.written
        expected_len = job.part.end - first
        if self.range_asked is None:
            if head.status != 200:
                return False
            length = head.get("Content-Length")
            if parse_decimal(length) != job.object_size:
                self.violation = ProtocolViolationError(
                    f"GET answered with Content-Length {length!r}, the object has {job.object_size} bytes",
                    status=head.status, headers=dict(head.headers))
            return self.violation is None
        if head.status == 200:
            self.violation = ProtocolViolationError(
                f"ranged GET ({self.range_asked}) answered with 200 and the whole object instead of 206",
                status=200, headers=dict(head.headers))
            return False
        if head.status != 206:
            return False
        crange = parse_content_range(head.get("Content-Range"))
        wanted = (first, job.part.end - 1, job.object_size)
        if crange != wanted:
            self.violation = ProtocolViolationError(
                f"asked for {self.range_asked} of {job.object_size} bytes, the server sent "
                f"Content-Range {head.get('Content-Range')!r}", status=206, headers=dict(head.headers))
            return False
        length = head.get("Content-Length")
        if length is not None and parse_decimal(length) != expected_len:
            self.violation = ProtocolViolationError(
                f"asked for {expected_len} bytes ({self.range_asked}), Content-Length says {length}",
                status=206, headers=dict(head.headers))
            return False
        return True


class TransferEngine:
    """Runs RangeJobs with at most ``max_connections`` transfers at once over kept-alive
    connections. Reusable: the multi handle and its easy handles (and so the connections) live
    until ``close()``."""

    def __init__(self, options: EngineOptions) -> None:
        if options.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.options = options
        self._multi = pycurl.CurlMulti()
        n = options.max_connections
        self._multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, n)
        self._multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, n)
        self._multi.setopt(pycurl.M_MAXCONNECTS, n)
        self._free: list[pycurl.Curl] = []
        self._all_handles: list[pycurl.Curl] = []
        self._closed = False

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
        """Closes every handle and connection; idempotent."""
        if self._closed:
            return
        self._closed = True
        for curl in self._all_handles:
            curl.close()
        self._all_handles.clear()
        self._free.clear()
        self._multi.close()

    def __enter__(self) -> "TransferEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop --------------------------------------------------------------------------

    def run(self, jobs: Iterable[RangeJob], *, on_progress: Optional[Callable[[int], None]] = None,
            on_tick: Optional[Callable[[], None]] = None) -> None:
        """Runs every job to success or final failure, reporting each to its owner.

        Jobs are taken from ``jobs`` lazily, in the order given (ascending offsets for one object),
        so a generator can still be listing while the first transfers run. A source may yield
        None to say "nothing ready yet" (the engine asks again within ``progress_interval``); it
        should block instead when it knows no transfer of its is running or waiting to retry.
        ``on_progress`` gets the number of new body bytes written since its last call;
        ``on_tick`` is called about every ``progress_interval`` seconds even when no byte moves
        (to save resume records while a connection stalls)."""
        if self._closed:
            raise RuntimeError("engine is closed")
        source: Iterator[RangeJob] = iter(jobs)
        exhausted = False
        retry_heap: list[tuple[float, int, RangeJob]] = []  # (not_before, seq, job)
        seq = itertools.count()
        active: dict[int, tuple[pycurl.Curl, _Attempt]] = {}
        limit = self.options.max_connections
        progress = _ProgressMeter(on_progress, self.options.progress_interval)
        ticker = _Ticker(on_tick, self.options.progress_interval)

        def next_ready(now: float) -> Optional[RangeJob]:
            nonlocal exhausted
            if retry_heap and retry_heap[0][0] <= now:
                return heapq.heappop(retry_heap)[2]
            while not exhausted:
                try:
                    job = next(source)
                except StopIteration:
                    exhausted = True
                    return None
                if job is None:
                    return None
                if job.owner.failed is None:
                    return job
            return None

        def fill() -> None:
            now = time.monotonic()
            while len(active) < limit:
                job = next_ready(now)
                if job is None:
                    return
                if job.owner.failed is not None:
                    continue
                curl, attempt = self._start(job)
                active[id(curl)] = (curl, attempt)
                progress.track(job.sink)

        try:
            while True:
                fill()
                if not active:
                    if retry_heap:
                        # Bounded, so a source that yielded None is asked again soon.
                        time.sleep(min(self.options.progress_interval,
                                       max(0.0, retry_heap[0][0] - time.monotonic())))
                        continue
                    if exhausted:
                        break
                    continue
                self._perform()
                self._drain(active, retry_heap, seq, progress)
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

    def _start(self, job: RangeJob) -> tuple[pycurl.Curl, _Attempt]:
        curl = self._take_handle()
        range_asked = job.range_header()
        extra = {"Range": range_asked} if range_asked else {}
        url, header_lines = job.build_request(extra)
        attempt = _Attempt(job, range_asked)
        job.attempts += 1
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.HTTPHEADER, header_lines)
        curl.setopt(pycurl.HEADERFUNCTION, attempt.on_header)
        curl.setopt(pycurl.WRITEFUNCTION, attempt.write, use_memoryview=True)
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
        timeout = min(timeout, self.options.progress_interval)
        if retry_heap:
            timeout = min(timeout, max(0.0, retry_heap[0][0] - time.monotonic()))
        if timeout > 0:
            self._multi.select(timeout)

    def _cancel_failed_owners(self, active: dict, progress: "_ProgressMeter") -> None:
        """Stops the transfers of objects that already failed: their bytes would be thrown away."""
        for key, (curl, attempt) in list(active.items()):
            if attempt.job.owner.failed is not None:
                del active[key]
                self._multi.remove_handle(curl)
                self._release(curl)
                progress.untrack(attempt.job.sink)

    def _drain(self, active: dict, retry_heap: list, seq: Iterator[int], progress: "_ProgressMeter") -> None:
        while True:
            queued, ok_list, err_list = self._multi.info_read()
            for curl in ok_list:
                self._finish(curl, None, active, retry_heap, seq, progress)
            for curl, errno, errmsg in err_list:
                self._finish(curl, (errno, errmsg), active, retry_heap, seq, progress)
            if queued == 0:
                return

    def _finish(self, curl: pycurl.Curl, curl_error: Optional[tuple[int, str]], active: dict,
                retry_heap: list, seq: Iterator[int], progress: "_ProgressMeter") -> None:
        _, attempt = active.pop(id(curl))
        self._multi.remove_handle(curl)
        self._release(curl)
        job = attempt.job
        progress.untrack(job.sink)
        error = _outcome(attempt, curl_error)
        if error is None:
            job.response = attempt.head
            job.owner.part_done(job)
            return
        job.last_error = error
        if job.owner.failed is not None:
            return
        if isinstance(error, TransferError) and error.retryable and job.attempts < self.options.retry.max_attempts:
            delay = self.options.retry.delay(job.attempts, error.retry_after)
            heapq.heappush(retry_heap, (time.monotonic() + delay, next(seq), job))
            return
        job.owner.part_failed(job, error)


def _discard(data: bytes) -> None:
    return None


def _outcome(attempt: _Attempt, curl_error: Optional[tuple[int, str]]) -> Optional[BaseException]:
    """None if the attempt delivered the whole part, else the error that ended it."""
    job, head = attempt.job, attempt.head
    sink = job.sink
    if sink.error is not None:
        return sink.error  # the disk (or an overflow): final, never retried
    if attempt.violation is not None:
        return attempt.violation
    if attempt.accept_body:
        if curl_error is None and sink.written == job.part.length:
            return None
        reason = curl_error[1] if curl_error else "connection closed early"
        return RetryableTransferError(
            f"part at offset {job.part.offset} stopped after {sink.written} of {job.part.length} bytes: {reason}")
    if curl_error is not None and not head.complete:
        errno, msg = curl_error
        cls = RetryableTransferError if errno in RETRYABLE_CURL_ERRORS else TransferError
        return cls(f"transfer failed: {msg} (curl error {errno})")
    status = head.status
    headers = dict(head.headers)
    body = bytes(attempt.error_body)
    if status == 412:
        return ObjectChangedError("the object changed since the download started (If-Match failed)",
                                  status=status, headers=headers, body=body)
    if status in RETRYABLE_STATUS:
        return RetryableTransferError(f"server answered {status}", status=status, headers=headers, body=body,
                                      retry_after=parse_retry_after(head.get("Retry-After")))
    return ServerRefusedError(f"server answered {status}", status=status, headers=headers, body=body)


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
