"""A prefix downloaded by worker processes, one per core: the batch path without the GIL.

With many small objects the limit is per-object Python (placement, signing, temp file, lock,
bookkeeping: a few hundred microseconds each), which holds the GIL, so engine lanes in threads
wait for each other instead of using the second core. Here the parent lists, places each key
(placement needs every earlier key) and hands placed objects out; each worker runs its own
one-lane engine over its share of the connection cap and does everything else for its objects
(skip-unchanged check, temp file, GET, CRC, rename, mtime), exactly as the in-process batch
does (cosfast.transfer.batch.Batch). Workers send back each object's result and their byte
counts; the parent applies them to the summary and calls the callbacks, so callbacks run in
the calling thread. Warnings and cosfast's log records raised in a worker are sent along and
raised or logged again in the parent, where the caller's filters and handlers see them.

Work is pulled: the parent keeps at most ``window`` objects outstanding per worker and tops a
worker up as its results come back, so a slow worker gets less. The parent's sends never block:
the work outstanding at a worker is bounded in bytes as well, below a socket buffer (a parent
blocked sending work would read no results, and the worker blocked sending them no work).

Workers are forked (no re-import, no ``__main__`` guard needed in the caller's script), so
automatic use is limited to a calling process with one thread (a lock held by another thread at
fork time would stay locked in the child forever). Stopping: a worker ignores SIGINT; when the
parent is interrupted or dies, its end of the pipe closes, and the worker abandons its objects
(their temp files are removed) and exits. A worker that dies fails its outstanding objects
with a clear reason and the others go on.
"""
from __future__ import annotations

import collections
import gc
import logging
import os
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Pipe, wait
from typing import Callable, NoReturn, Optional

from cosfast import partwriter
from cosfast.cos_exception import CosClientError
from cosfast.transfer.batch import (END, FAILED, Batch, BatchOptions, ListedObject, ListingPage, ObjectResult,
                                    PlacedObject, PlacedSource, Reporter, RequestFor)
from cosfast.transfer.engine import TransferEngine

__all__ = ["process_count", "WorkerPool", "MIN_OBJECTS_FOR_WORKERS"]

# Fewer objects than this are not worth a fork: the in-process engine finishes them first.
MIN_OBJECTS_FOR_WORKERS = 64
# Outstanding objects per worker connection: enough to keep every connection busy between two
# top-ups. Each message costs both processes a wakeup: a batch of 2000 x 256 KiB took 1.05x the
# CPU with 8 per connection and results sent 32 at a time as with 16 and 64, and 1.11x with 4
# and 16; 32 and 128 gained nothing more.
_WINDOW_PER_CONNECTION = 16
# A worker sends its results once this many have gathered (or on its next progress tick).
_RESULTS_PER_MESSAGE = 64
# At most this many bytes of work outstanding at a worker (estimated by _work_bytes): well
# below a socket buffer (~208 KiB), whatever the keys' length.
_MAX_OUTSTANDING_BYTES = 128 * 1024
# How often the parent looks for newly listed objects while workers have room for them.
_LISTING_POLL_SECONDS = 0.005
# How long the parent waits for a stopped worker to exit before killing it, looking first after
# the first pause, then after twice as long each time, up to the last.
_EXIT_GRACE_SECONDS = 10.0
_FIRST_EXIT_POLL_SECONDS = 0.0002
_LAST_EXIT_POLL_SECONDS = 0.005
# Exit statuses of a worker.
_EXIT_OK, _EXIT_PARENT_GONE, _EXIT_FAILED = 0, 3, 70

# On the wire: work is a list of (key, size, etag, last_modified, path, fresh), None ends it; results
# are (results, consumed, total, notices) with results as ObjectResult field tuples and notices
# as ("warning", message, category) or ("log", LogRecord attributes); None ends them, a str is
# the worker's fatal error.
_WorkItem = tuple[str, int, str, str, str, bool]


def process_count(options: BatchOptions, first_page: ListingPage) -> int:
    """How many worker processes to download with; 0: in this process."""
    if not hasattr(os, "fork"):
        return 0
    requested = options.processes
    if requested is None:
        if threading.active_count() > 1:
            return 0
        if first_page.next_marker is None and len(first_page.objects) < MIN_OBJECTS_FOR_WORKERS:
            return 0
        requested = options.download.engine_options().lane_count()
    count = min(requested, options.download.max_connections)
    return count if count >= 2 else 0


class _ParentGone(Exception):
    """The parent closed its end of the pipe: interrupted, failed or killed."""


# -- the worker side -----------------------------------------------------------------------------


class _Outbox:
    """The worker's Reporter: gathers results, byte counts, warnings and log records, and sends
    them in batches."""

    def __init__(self, conn: Connection, interval: float) -> None:
        self._conn = conn
        self._interval = interval
        self._results: list[tuple] = []
        self._notices: list[tuple] = []
        self._consumed = 0
        self._total = 0
        self._due = time.monotonic() + interval

    def result(self, result: ObjectResult) -> None:
        self._results.append((result.key, result.path, result.status, result.size, result.error))
        if len(self._results) >= _RESULTS_PER_MESSAGE:
            self.flush()

    def add_total(self, nbytes: int) -> None:
        self._total += nbytes

    def add_consumed(self, nbytes: int) -> None:
        self._consumed += nbytes

    def notice(self, notice: tuple) -> None:
        self._notices.append(notice)

    def flush_if_due(self) -> None:
        if time.monotonic() >= self._due:
            self.flush()

    def flush(self) -> None:
        if self._results or self._consumed or self._total or self._notices:
            self._conn.send((self._results, self._consumed, self._total, self._notices))
            self._results, self._consumed, self._total, self._notices = [], 0, 0, []
        self._due = time.monotonic() + self._interval


class _ForwardingHandler(logging.Handler):
    """Sends the worker's cosfast log records to the parent (message already formatted)."""

    def __init__(self, outbox: _Outbox) -> None:
        super().__init__()
        self._outbox = outbox

    def emit(self, record: logging.LogRecord) -> None:
        fields = dict(record.__dict__, msg=record.getMessage(), args=None, exc_info=None, exc_text=None)
        self._outbox.notice(("log", fields))


def _forward_notices(outbox: _Outbox) -> None:
    """In a worker: warnings that the (inherited) filters would show, and records of the cosfast
    loggers, go to the parent instead of this process's stderr and handlers."""

    def show(message: Warning | str, category: type, filename: str, lineno: int, file: object = None,
             line: object = None) -> None:
        outbox.notice(("warning", str(message), category))

    warnings.showwarning = show
    package = logging.getLogger("cosfast")
    package.handlers = [_ForwardingHandler(outbox)]
    package.propagate = False


class _Inbox:
    """The worker's PlacedSource: objects as the parent hands them out."""

    def __init__(self, conn: Connection, outbox: _Outbox) -> None:
        self._conn = conn
        self._outbox = outbox
        self._items: collections.deque[PlacedObject] = collections.deque()
        self._ended = False

    def __call__(self, block: bool) -> object:
        if not self._items and not self._ended:
            # Running dry: the parent tops a worker up when its results come back.
            self._outbox.flush()
            if block or self._conn.poll():
                self._receive()
        if self._items:
            return self._items.popleft()
        return END if self._ended else None

    def check_parent(self) -> None:
        """Reads what the parent sent, if anything: an ended parent raises _ParentGone even while
        every connection is busy and no object is asked for."""
        if not self._ended and self._conn.poll():
            self._receive()

    def _receive(self) -> None:
        try:
            message = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise _ParentGone("the parent process closed the pipe") from exc
        if message is None:
            self._ended = True
            return
        self._items.extend((ListedObject(key, size, etag, last_modified), path, fresh)
                           for key, size, etag, last_modified, path, fresh in message)


def _work(conn: Connection, *, bucket: str, request_for: RequestFor, options: BatchOptions,
          max_connections: int) -> None:
    outbox = _Outbox(conn, options.download.engine.progress_interval)
    _forward_notices(outbox)
    inbox = _Inbox(conn, outbox)
    batch = Batch(bucket=bucket, request_for=request_for, options=options, source=inbox, reporter=outbox)
    engine = TransferEngine(options.download.engine_options(max_connections=max_connections, lanes=1))

    def tick() -> None:
        batch.tick()
        outbox.flush_if_due()
        inbox.check_parent()

    try:
        engine.run(batch.jobs(), on_progress=batch.on_bytes, on_tick=tick)
        # The last results go out before the clean-up: the parent can finish the batch's
        # summary while this process closes its connections and drops its recycled pages.
        outbox.flush()
    except BaseException as exc:
        batch.abandon_all(exc)
        raise
    finally:
        engine.close()
        partwriter.release_recycled()
    outbox.flush()  # anything the clean-up logged
    conn.send(None)


def _worker_process(conn: Connection, inherited: list[Connection], **work: object) -> NoReturn:
    """The body of a forked worker; never returns (os._exit: no atexit handlers, no flushing of
    buffers inherited from the parent)."""
    status = _EXIT_FAILED
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and closes the pipe
        for other in inherited:
            other.close()
        _work(conn, **work)  # type: ignore[arg-type]
        status = _EXIT_OK
    except _ParentGone:
        status = _EXIT_PARENT_GONE
    except BaseException as exc:
        try:
            conn.send(f"the worker process failed: {exc or type(exc).__name__}")
        except BaseException:
            pass
    finally:
        os._exit(status)


# -- the parent side -----------------------------------------------------------------------------


def _raise_again(notice: tuple) -> None:
    """A worker's warning or log record, in this process."""
    if notice[0] == "warning":
        _, message, category = notice
        warnings.warn(message, category, stacklevel=2)
    else:
        record = logging.makeLogRecord(notice[1])
        logging.getLogger(record.name).handle(record)


@dataclass(eq=False)
class _Worker:
    pid: int
    conn: Connection
    window: int
    # key -> (the placed object, its _work_bytes): the estimate is made once, when it is dealt.
    outstanding: dict[str, tuple[PlacedObject, int]] = field(default_factory=dict)
    outstanding_bytes: int = 0
    input_closed: bool = False
    exit_status: Optional[int] = None

    @property
    def room(self) -> int:
        if self.outstanding_bytes >= _MAX_OUTSTANDING_BYTES:
            return 0
        return self.window - len(self.outstanding)

    def forget(self, key: str) -> None:
        """``key``'s object is no longer outstanding."""
        entry = self.outstanding.pop(key, None)
        if entry is not None:
            self.outstanding_bytes -= entry[1]

    def forget_all(self) -> list[PlacedObject]:
        """Every outstanding object, which no longer is."""
        placed = [entry[0] for entry in self.outstanding.values()]
        self.outstanding.clear()
        self.outstanding_bytes = 0
        return placed


def _work_bytes(placed: PlacedObject) -> int:
    """At least the bytes of ``placed`` in a work message: 3 per character of key and path
    (UTF-8 of any character but the rare 4-byte ones), the rest ASCII, and pickling's share."""
    listed, path, _ = placed
    return 3 * (len(listed.key) + len(path)) + len(listed.etag) + len(listed.last_modified) + 64


class WorkerPool:
    """Forked workers downloading the objects a PlacedSource gives; see the module docstring."""

    def __init__(self, workers: list[_Worker]) -> None:
        self._workers = workers

    @classmethod
    def fork(cls, count: int, *, bucket: str, request_for: RequestFor, options: BatchOptions) -> "WorkerPool":
        """Forks ``count`` workers sharing ``options.download.max_connections`` connections."""
        total = options.download.max_connections
        workers: list[_Worker] = []
        # Frozen, the objects a worker inherits (modules, the caller's data) are left out of its
        # garbage collections: each full collection would otherwise walk them all and, by writing
        # to their headers, copy the parent's pages into the child. 2000 x 256 KiB: 0.95x the CPU,
        # 1.10x the speed. The parent unfreezes its own at once.
        gc.freeze()
        try:
            for index in range(count):
                share = total // count + (1 if index < total % count else 0)
                parent_end, child_end = Pipe()
                pid = os.fork()
                if pid == 0:
                    _worker_process(child_end, [w.conn for w in workers] + [parent_end], bucket=bucket,
                                    request_for=request_for, options=options, max_connections=share)
                child_end.close()
                workers.append(_Worker(pid, parent_end, window=_WINDOW_PER_CONNECTION * share))
        except BaseException:
            cls(workers)._stop()
            raise
        finally:
            gc.unfreeze()
        return cls(workers)

    def run(self, source: PlacedSource, reporter: Reporter, started: Callable[[], None]) -> None:
        """Hands out every object ``source`` gives and reports each outcome to ``reporter``;
        ``started()`` is called once every worker has had its first objects (or the source had
        no more ready)."""
        try:
            self._hand_out_all(source, reporter, started)
        finally:
            self._stop()

    def _hand_out_all(self, source: PlacedSource, reporter: Reporter, started: Callable[[], None]) -> None:
        live = list(self._workers)
        listing_done = self._top_up(source, live)
        started()
        while live:
            if not listing_done:
                listing_done = self._top_up(source, live)
            if listing_done:
                for worker in live:
                    self._end_work(worker)
            elif not any(worker.outstanding for worker in live):
                # Nothing to wait for but the listing.
                item = source(True)
                if item is END:
                    listing_done = True
                else:
                    self._send_work(max(live, key=lambda w: w.room), [(item, _work_bytes(item))])  # type: ignore[arg-type]
                continue
            waiting_for_listing = not listing_done and any(worker.room > 0 for worker in live)
            ready = wait([worker.conn for worker in live], _LISTING_POLL_SECONDS if waiting_for_listing else None)
            for worker in [w for w in live if w.conn in ready]:
                if not self._receive(worker, reporter):
                    live.remove(worker)
        if not listing_done:
            reasons = "; ".join(sorted({self._end_reason(w) for w in self._workers}))
            raise CosClientError(f"every worker process of the batch ended: {reasons}")

    def _top_up(self, source: PlacedSource, live: list[_Worker]) -> bool:
        """Gives each worker newly placed objects up to its window, dealt out one at a time to
        the workers with room (the emptiest first), so that a short listing is shared rather
        than all given to one worker; True once the source ended."""
        dealt: dict[_Worker, list[tuple[PlacedObject, int]]] = {worker: [] for worker in live}
        budget = {worker: _MAX_OUTSTANDING_BYTES - worker.outstanding_bytes for worker in live}
        takers = [worker for worker in sorted(live, key=lambda w: -w.room) if worker.room > 0]
        ended = False
        while takers and not ended:
            for worker in takers:
                item = source(False)
                if item is None or item is END:
                    ended = item is END
                    takers = []
                    break
                nbytes = _work_bytes(item)  # type: ignore[arg-type]
                dealt[worker].append((item, nbytes))  # type: ignore[arg-type]
                budget[worker] -= nbytes
            takers = [w for w in takers if len(dealt[w]) < w.room and budget[w] > 0]
        for worker, items in dealt.items():
            self._send_work(worker, items)
        return ended

    def _send_work(self, worker: _Worker, items: list[tuple[PlacedObject, int]]) -> None:
        """Sends ``items`` (placed objects with their _work_bytes) to ``worker``."""
        if items:
            worker.outstanding.update((entry[0][0].key, entry) for entry in items)
            worker.outstanding_bytes += sum(nbytes for _, nbytes in items)
            self._send(worker, [(listed.key, listed.size, listed.etag, listed.last_modified, path, fresh)
                                for (listed, path, fresh), _ in items])

    def _end_work(self, worker: _Worker) -> None:
        """Tells ``worker`` that no more objects will come (once)."""
        if not worker.input_closed:
            worker.input_closed = True
            self._send(worker, None)

    @staticmethod
    def _send(worker: _Worker, message: Optional[list[_WorkItem]]) -> None:
        try:
            worker.conn.send(message)
        except OSError:
            pass  # the worker is gone; its end is read (EOF) and its objects failed in _receive

    def _receive(self, worker: _Worker, reporter: Reporter) -> bool:
        """Applies one message of ``worker``; False when the worker has ended."""
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            message = ""
        if isinstance(message, tuple):
            results, consumed, total, notices = message
            for notice in notices:
                _raise_again(notice)
            reporter.add_total(total)
            reporter.add_consumed(consumed)
            for fields in results:
                worker.forget(fields[0])
                reporter.result(ObjectResult(*fields))
            return True
        self._reap(worker, kill=False)
        if worker.outstanding:
            reason = message or self._end_reason(worker)
            for listed, path, _ in worker.forget_all():
                reporter.result(ObjectResult(listed.key, path, FAILED, listed.size, reason))
        return False

    @staticmethod
    def _end_reason(worker: _Worker) -> str:
        status = worker.exit_status
        if status is None:
            return "the worker process is still running"
        if os.WIFSIGNALED(status):
            return f"the worker process was killed by signal {os.WTERMSIG(status)}"
        return f"the worker process exited with status {os.waitstatus_to_exitcode(status)}"

    def _stop(self) -> None:
        """Closes every pipe (a worker still running abandons its objects and exits), then waits
        for every worker."""
        for worker in self._workers:
            worker.conn.close()
        for worker in self._workers:
            self._reap(worker, kill=True)

    @staticmethod
    def _reap(worker: _Worker, *, kill: bool) -> None:
        if worker.exit_status is not None:
            return
        deadline = time.monotonic() + _EXIT_GRACE_SECONDS
        pause = _FIRST_EXIT_POLL_SECONDS  # a worker that said it is done exits within a millisecond
        while True:
            pid, status = os.waitpid(worker.pid, os.WNOHANG)
            if pid:
                worker.exit_status = status
                return
            if time.monotonic() >= deadline:
                if not kill:
                    return
                os.kill(worker.pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(pause)
            pause = min(pause * 2, _LAST_EXIT_POLL_SECONDS)
