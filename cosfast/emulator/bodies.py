"""Sending an object's bytes: sendfile when nothing shapes the body, chunked writes when a
fault or ``x-cos-traffic-limit`` does (pacing, a stall, a drop, a flipped byte)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import BinaryIO

from aiohttp import web

from cosfast.emulator.faults import Fault
from cosfast.emulator.requestlog import RequestRecord

_CHUNK = 256 * 1024
# A paced body goes out in chunks of about 1/20 s of its rate, so its speed is even.
_PACED_CHUNKS_PER_SECOND = 20
_INVERT = bytes(255 - b for b in range(256))


@dataclass
class Shaping:
    """How a body must misbehave. Offsets in ``flip`` are object offsets."""

    rate: int | None = None  # bytes per second
    drop_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = 0.0
    flip: set = field(default_factory=set)

    @classmethod
    def from_faults(cls, faults: list[Fault], traffic_limit: int | None) -> Shaping | None:
        shaping = cls(rate=traffic_limit)
        for f in faults:
            if f.kind == "slow":
                shaping.rate = f.rate if shaping.rate is None else min(shaping.rate, f.rate)
            elif f.kind == "drop":
                shaping.drop_after = f.after_bytes
            elif f.kind == "stall":
                shaping.stall_after, shaping.stall_seconds = f.after_bytes, f.seconds
            elif f.kind == "flip":
                shaping.flip.add(f.offset)
        if shaping == cls():
            return None
        return shaping


def invert(data: bytes) -> bytes:
    """Every byte inverted (the default new content of a ``replace`` fault)."""
    return data.translate(_INVERT)


@dataclass(frozen=True)
class BodyJob:
    """One body to send: ``length`` bytes of ``file`` from object offset ``first``."""

    request: web.Request
    response: web.StreamResponse
    file: BinaryIO
    first: int
    length: int
    record: RequestRecord


async def send_body(job: BodyJob, shaping: Shaping | None) -> None:
    """Headers, then the body: by sendfile (the fast path) unless ``shaping`` says otherwise.
    A client that goes away is recorded, not raised."""
    job.response.content_length = job.length
    try:
        await job.response.prepare(job.request)
        if shaping is None:
            await _sendfile(job)
        else:
            await _send_shaped(job, shaping)
    except ConnectionError:
        job.record.error_code = "ClientClosed"


async def _sendfile(job: BodyJob) -> None:
    if job.length:
        transport = job.request.transport
        if transport is None:
            raise ConnectionResetError("client went away before the body")
        await asyncio.get_running_loop().sendfile(transport, job.file, job.first, job.length)
    job.record.bytes_sent = job.length
    await job.response.write_eof()


async def _send_shaped(job: BodyJob, shaping: Shaping) -> None:
    request, response, record, first, length = (
        job.request,
        job.response,
        job.record,
        job.first,
        job.length,
    )
    loop = asyncio.get_running_loop()
    chunk_size = _CHUNK
    if shaping.rate:
        chunk_size = max(1, min(_CHUNK, shaping.rate // _PACED_CHUNKS_PER_SECOND))
    fd = job.file.fileno()
    sent = 0
    started = loop.time()
    stalled = False
    while sent < length:
        if shaping.drop_after is not None and sent >= shaping.drop_after:
            _drop(request, record)
            return
        if shaping.stall_after is not None and not stalled and sent >= shaping.stall_after:
            stalled = True
            await asyncio.sleep(shaping.stall_seconds)
            started += shaping.stall_seconds  # a stall is not part of the paced time
        n = min(chunk_size, length - sent)
        for boundary in (shaping.drop_after, None if stalled else shaping.stall_after):
            if boundary is not None and sent < boundary < sent + n:
                n = boundary - sent
        data = os.pread(fd, n, first + sent)
        if len(data) != n:
            raise OSError(f"object data file {job.file.name!r} is shorter than its recorded size")
        data = _flip(data, first + sent, shaping.flip)
        await response.write(data)
        sent += n
        record.bytes_sent = sent
        if shaping.rate:
            delay = started + sent / shaping.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
    await response.write_eof()


def _flip(data: bytes, offset: int, flips: set) -> bytes:
    hits = [o - offset for o in flips if offset <= o < offset + len(data)]
    if not hits:
        return data
    buf = bytearray(data)
    for i in hits:
        buf[i] ^= 0xFF
    return bytes(buf)


def _drop(request: web.Request, record: RequestRecord) -> None:
    """Closes the connection: what was written is flushed, then FIN; the body stays short."""
    record.dropped = True
    if request.transport is not None:
        request.transport.close()
