"""The request log: what each request asked and what it got, for tests to assert on.

Records are appended when a request starts and completed when it ends (``ended`` is None while
it is in flight). ``conn_id`` numbers TCP connections in the order the server first saw them,
so a test can count the connections a client opened. Never records the Authorization value or
the security token.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

SERVER_NAME = "tencent-cos"
SETTLE_SECONDS = 1.0
LOG_LIMIT = 100_000  # records kept; the oldest go first

#: Request headers a record keeps (lower-case); credentials are deliberately absent.
LOGGED_HEADERS = (
    "host",
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "x-cos-traffic-limit",
    "user-agent",
    "connection",
    "content-length",
    "content-type",
    "x-cos-sdk-retry",
)


@dataclass
class RequestRecord:
    method: str
    path: str  # decoded URL path
    bucket: str | None
    key: str | None
    query: dict  # decoded query, signature fields (q-*) and token left out
    range: str | None  # the Range header as sent
    conn_id: int
    started: float  # time.time()
    headers: dict = field(default_factory=dict)  # LOGGED_HEADERS present in the request
    request_id: str = ""
    secret_id: str | None = None  # who signed it; None if anonymous or auth is off
    status: int | None = None
    bytes_sent: int = 0  # body bytes handed to the socket
    ended: float | None = None
    error_code: str | None = None
    faults: list = field(default_factory=list)  # kinds of the faults that fired on it
    dropped: bool = False  # the server closed the connection mid-body (drop fault)

    def stamp(self) -> dict[str, str]:
        """Headers every answer to this request carries, as COS's do."""
        return {"Server": SERVER_NAME, "x-cos-request-id": self.request_id}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # Bounded, so a long-running server does not grow without end; tests see far fewer.
        self._records: deque[RequestRecord] = deque(maxlen=LOG_LIMIT)
        self._conn_ids: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self._next_conn = itertools.count(1)

    def conn_id(self, transport: Any) -> int:
        """A stable number for the TCP connection behind ``transport``."""
        if transport is None:
            return 0
        with self._lock:
            cid = self._conn_ids.get(transport)
            if cid is None:
                cid = self._conn_ids[transport] = next(self._next_conn)
            return cid

    def start(self, record: RequestRecord) -> RequestRecord:
        with self._lock:
            self._records.append(record)
        return record

    def finish(self, record: RequestRecord, status: int) -> None:
        with self._changed:
            record.status = status
            record.ended = time.time()
            self._changed.notify_all()

    def records(self, settle: float = SETTLE_SECONDS) -> list[RequestRecord]:
        """A copy of the log. Waits up to ``settle`` seconds for requests in flight to end: a
        client may hold the last byte of an answer before the server has finished its record."""
        deadline = time.monotonic() + settle
        with self._changed:
            while any(r.ended is None for r in self._records):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


def peak_concurrency(records: list[RequestRecord]) -> int:
    """The most requests that were in flight at once (a request in flight has ended=None)."""
    events = []
    for r in records:
        events.append((r.started, 1))
        events.append((r.ended if r.ended is not None else float("inf"), -1))
    peak = current = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):  # ends sort before starts
        current += step
        peak = max(peak, current)
    return peak
