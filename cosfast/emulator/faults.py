"""Fault injection: which requests misbehave, and how.

A :class:`Fault` matches requests by bucket, key, method, Range start and whether the request
is ranged; it fires on the ``nth`` matching request and the ``times - 1`` after it (``times=None``:
every one from the nth on). Nothing misbehaves unless a fault was added.

Kinds:

==========  ==================================================================================
status      answer ``status`` (500/503...) with COS's error XML, ``Retry-After`` if given
redirect    answer ``status`` (302 unless a 3xx is given) with ``Location: location``
replace     before serving, replace the object (``new_data``, or its bytes inverted): new ETag
full200     answer a ranged GET with 200 and the whole body (as a server ignoring Range would)
drop        close the connection after ``after_bytes`` body bytes (FIN after the bytes sent)
stall       after ``after_bytes`` body bytes, send nothing for ``seconds``, then go on
slow        pace the body to ``rate`` bytes per second
flip        invert one byte at object offset ``offset`` (only requests whose body covers it)
==========  ==================================================================================

``status``, ``redirect`` and ``replace`` are decided before the object is read (any method unless
``method`` says); the others shape a GET's body and only match GETs that send one.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass

BEFORE_KINDS = ("status", "redirect", "replace")
BODY_KINDS = ("full200", "drop", "stall", "slow", "flip")
KINDS = BEFORE_KINDS + BODY_KINDS


@dataclass(frozen=True)
class Fault:
    kind: str
    key: str | None = None
    bucket: str | None = None
    method: str | None = None
    range_start: int | None = None  # match only requests whose Range starts here
    ranged: bool | None = None  # True: only ranged requests; False: only whole-object ones
    nth: int = 1
    times: int | None = 1
    status: int | None = None  # status: default 503; redirect: default 302
    code: str | None = None  # status: error code (default SlowDown for 503, InternalError)
    retry_after: int | None = None  # status: seconds, sent as Retry-After
    location: str | None = None  # redirect: where to
    after_bytes: int = 0  # drop, stall
    seconds: float = 1.0  # stall
    rate: int | None = None  # slow: bytes per second
    offset: int = 0  # flip: offset in the object
    new_data: bytes | None = None  # replace

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.nth < 1:
            raise ValueError(f"nth counts from 1, got {self.nth}")
        if self.times is not None and self.times < 1:
            raise ValueError(f"times must be >= 1 or None (always), got {self.times}")
        if self.method is not None:
            object.__setattr__(self, "method", self.method.upper())
            if self.kind in BODY_KINDS and self.method != "GET":
                raise ValueError(f"a {self.kind!r} fault shapes a GET body; method must be GET")
        if self.kind == "status":
            object.__setattr__(self, "status", 503 if self.status is None else self.status)
            if not 400 <= self.status <= 599:
                raise ValueError(f"a status fault needs a 4xx/5xx status, got {self.status}")
        if self.kind == "redirect":
            object.__setattr__(self, "status", 302 if self.status is None else self.status)
            if not 300 <= self.status <= 399 or not self.location:
                raise ValueError("a redirect fault needs a 3xx status and a location")
        if self.kind == "slow" and (self.rate is None or self.rate <= 0):
            raise ValueError("a 'slow' fault needs rate > 0 (bytes per second)")
        if self.after_bytes < 0 or self.offset < 0 or self.seconds < 0:
            raise ValueError("after_bytes, offset and seconds must be >= 0")

    def to_json(self) -> dict:
        body = asdict(self)
        if self.new_data is not None:
            body["new_data"] = self.new_data.hex()
        return body

    @classmethod
    def from_json(cls, body: dict) -> Fault:
        body = dict(body)
        if body.get("new_data") is not None:
            body["new_data"] = bytes.fromhex(body["new_data"])
        return cls(**body)


@dataclass(frozen=True)
class Candidate:
    """What a request looks like to the fault matcher."""

    method: str
    bucket: str | None
    key: str | None
    range_start: int | None
    ranged: bool
    span: tuple[int, int] | None = None  # object bytes [first, end) the body will carry


def _matches(fault: Fault, c: Candidate, phase: tuple[str, ...]) -> bool:
    if fault.kind not in phase:
        return False
    if fault.kind in BODY_KINDS:
        if c.method != "GET" or c.span is None:
            return False
        if fault.kind == "full200" and not c.ranged:
            return False
        if fault.kind == "flip" and not c.span[0] <= fault.offset < c.span[1]:
            return False
    elif fault.method is not None and fault.method != c.method:
        return False
    return (
        (fault.key is None or fault.key == c.key)
        and (fault.bucket is None or fault.bucket == c.bucket)
        and (fault.range_start is None or fault.range_start == c.range_start)
        and (fault.ranged is None or fault.ranged == c.ranged)
    )


class FaultSet:
    """The active faults and their counters; thread-safe (the Python API adds, the server fires)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        # id -> [fault, matched, fired]
        self._faults: dict[int, list] = {}

    def add(self, fault: Fault) -> int:
        with self._lock:
            fid = next(self._ids)
            self._faults[fid] = [fault, 0, 0]
            return fid

    def remove(self, fid: int) -> None:
        with self._lock:
            self._faults.pop(fid, None)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def fired(self, fid: int) -> int:
        """How many requests this fault has fired on so far."""
        with self._lock:
            entry = self._faults.get(fid)
            return entry[2] if entry else 0

    def snapshot(self) -> list[dict]:
        with self._lock:
            return [
                {"id": fid, "fault": f.to_json(), "matched": m, "fired": n}
                for fid, (f, m, n) in self._faults.items()
            ]

    def select(self, c: Candidate, phase: tuple[str, ...]) -> list[Fault]:
        """The faults of ``phase`` that fire on this request (counting it for each that matches)."""
        if not self._faults:
            return []
        out = []
        with self._lock:
            for entry in self._faults.values():
                fault = entry[0]
                if not _matches(fault, c, phase):
                    continue
                entry[1] += 1
                last = None if fault.times is None else fault.nth + fault.times - 1
                if entry[1] >= fault.nth and (last is None or entry[1] <= last):
                    entry[2] += 1
                    out.append(fault)
        return out
