"""Fault injection: which requests misbehave, and how.

A :class:`Fault` matches requests by bucket, key, method, Range start and whether the request
is ranged; it fires on the ``nth`` matching request and the ``times - 1`` after it (``times=None``:
every one from the nth on). Nothing misbehaves unless a fault was added.

``scope`` says which requests a fault is for: ``"object"`` (the default; GET, HEAD, PUT and
DELETE Object, so ``key=None`` means any object of the bucket) or ``"listing"`` (GET Bucket,
List Objects: ``status``, ``redirect`` and ``delay`` only, matched by bucket and by ``marker``,
``""`` being the first page). The scopes never mix: an object fault never fires on a listing.

Kinds:

==========  ==================================================================================
status      answer ``status`` (500/503...) with COS's error XML, ``Retry-After`` if given
redirect    answer ``status`` (302 unless a 3xx is given) with ``Location: location``
delay       wait ``seconds``, then answer as if there were no fault (or as the others say)
replace     before serving, replace the object (``new_data``, or its bytes inverted): new ETag
full200     answer a ranged GET with 200 and the whole body (as a server ignoring Range would)
drop        close the connection after ``after_bytes`` body bytes (FIN after the bytes sent)
stall       after ``after_bytes`` body bytes, send nothing for ``seconds``, then go on
slow        pace the body to ``rate`` bytes per second
flip        invert one byte at object offset ``offset`` (only requests whose body covers it)
==========  ==================================================================================

``status``, ``redirect``, ``delay`` and ``replace`` are decided before the object is read (any
method unless ``method`` says); the others shape a GET's body and only match GETs that send one.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from dataclasses import asdict, dataclass

from aiohttp import web

from cosfast.emulator.errors import CosError, code_for_status

BEFORE_KINDS = ("status", "redirect", "delay", "replace")
BODY_KINDS = ("full200", "drop", "stall", "slow", "flip")
KINDS = BEFORE_KINDS + BODY_KINDS
SCOPES = ("object", "listing")
# A listing has no object to replace and no body to shape.
LISTING_KINDS = ("status", "redirect", "delay")


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
    seconds: float = 1.0  # stall, delay
    rate: int | None = None  # slow: bytes per second
    offset: int = 0  # flip: offset in the object
    new_data: bytes | None = None  # replace
    scope: str = "object"  # "object" or "listing" (GET Bucket): see the module docstring
    marker: str | None = None  # listing: match only requests for the page after this marker

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
        self._check_scope()
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

    def _check_scope(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"unknown fault scope {self.scope!r}; known: {', '.join(SCOPES)}")
        if self.scope == "object":
            if self.marker is not None:
                raise ValueError("marker matches listing requests: it needs scope='listing'")
            return
        if self.kind not in LISTING_KINDS:
            raise ValueError(
                f"a {self.kind!r} fault acts on objects; scope='listing' takes "
                f"{', '.join(LISTING_KINDS)}"
            )
        if self.key is not None or self.range_start is not None or self.ranged is not None:
            raise ValueError("key, range_start and ranged describe object requests, not listings")
        if self.method not in (None, "GET"):
            raise ValueError("a listing is a GET Bucket: method must be GET or None")

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
    scope: str = "object"
    marker: str | None = None  # a listing's marker ("" for the first page)


def listing_candidate(bucket: str, marker: str) -> Candidate:
    """A GET Bucket (List Objects) request as the fault matcher sees it."""
    return Candidate("GET", bucket, None, None, False, scope="listing", marker=marker)


def _matches(fault: Fault, c: Candidate, phase: tuple[str, ...]) -> bool:
    if fault.kind not in phase or fault.scope != c.scope:
        return False
    if fault.marker is not None and fault.marker != c.marker:
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


async def answer_before(faults: list[Fault]) -> web.Response | None:
    """What the faults decided before a request is served make of it: their delays pass (on the
    event loop, so other requests go on meanwhile), then a ``status`` fault raises COS's error
    or a ``redirect`` answers; None: serve the request."""
    for fault in faults:
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
    for fault in faults:
        if fault.kind == "status":
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            code = fault.code or code_for_status(fault.status)
            raise CosError(code, status=fault.status, headers=headers)
        if fault.kind == "redirect":
            return web.Response(status=fault.status, headers={"Location": fault.location})
    return None
