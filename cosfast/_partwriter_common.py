"""What the compiled part writer and its pure-Python twin share: the overflow exception (so the
engine catches one class whichever backend is live) and the argument checks."""
from __future__ import annotations

import os
import resource

import pycurl

MAX_U64 = (1 << 64) - 1
MAX_SIZE = (1 << 63) - 1  # off_t


def os_error(err: int, path: str) -> OSError:
    """OSError(errno, strerror, path): the one shape every part-writer I/O failure takes."""
    return OSError(err, os.strerror(err), path)


def check_range(name: str, value: int, maximum: int) -> None:
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise ValueError(f"{name} must be in [0, {maximum}], got {value}")


# Closed recycling files whose pages wait in the ring (see the compiled module's _ring_push):
# 128 files of 256 KiB give their writeback ~30 ms here before the pages are dropped (with 32,
# a batch of 2000 x 256 KiB that recycled while slow ran 0.85x the speed of always recycling,
# with 128 0.98x: fewer pages were still under writeback when their turn came).
RECYCLE_RING = 128


def ring_capacity() -> int:
    """How many closed files the ring holds in this process: RECYCLE_RING, or an eighth of the
    process's descriptor limit where that is less (at least 4), so it never starves the caller."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return RECYCLE_RING
    return max(4, min(RECYCLE_RING, soft // 8))


# TempFile's recycling modes (see the compiled module's RECYCLE_BUDGET).
RECYCLE_NEVER, RECYCLE_WHEN_SLOW, RECYCLE_ALWAYS = 0, 1, 2

# recycle="when-slow" recycles once RECYCLE_SLOW_PROBES of the last RECYCLE_PROBES_KEPT timed
# writes took more than RECYCLE_SLOW_NS per MiB. Measured on the bench VM (256 KiB writes):
# where fresh pages are cheap the median write takes ~90 us and 3-11% take 200-290 us (kernel
# work that comes and goes), rarely (0.3-0.6%) more than 375; where the host must fault them in,
# the slow writes take 500-1500 us (750 by median) and come three in five. One write slower than
# 700 us/MiB granted the budget until session 12: 94% of a cheap batch's files recycled.
RECYCLE_SLOW_NS = 1500 * 1000
RECYCLE_PROBES_KEPT = 4
RECYCLE_SLOW_PROBES = 2


def recycle_mode(recycle: object) -> int:
    """The mode of TempFile's ``recycle`` argument: False, True or "when-slow"."""
    if recycle is False:
        return RECYCLE_NEVER
    if recycle is True:
        return RECYCLE_ALWAYS
    if recycle == "when-slow":
        return RECYCLE_WHEN_SLOW
    raise ValueError(f"recycle must be False, True or 'when-slow', got {recycle!r}")


def check_direct(direct: object) -> None:
    """PartSink's ``direct`` argument: False, True or "auto" (see the compiled module's
    _AUTO_WINDOW)."""
    if direct is not False and direct is not True and direct != "auto":
        raise ValueError(f"direct must be False, True or 'auto', got {direct!r}")


def check_part(tempfile, offset: int, length: int, crc: int, written: int) -> None:
    """A part must lie inside its file, and a resumed one cannot have written past its end."""
    check_range("offset", offset, MAX_SIZE)
    check_range("length", length, MAX_SIZE)
    check_range("written", written, length)
    check_range("crc", crc, MAX_U64)
    if offset + length > tempfile.size:
        raise ValueError(
            f"part [{offset}, {offset + length}) runs past the end of "
            f"{tempfile.path!r} ({tempfile.size} bytes)"
        )


class PartOverflowError(ValueError):
    """A chunk would have run past the end of its part's byte range; nothing of it was written.

    Seen when a server sends more bytes than the range asked for (a wrong Content-Range, or a
    200 with the whole object to a ranged GET)."""

    def __init__(self, *, offset: int, length: int, written: int, chunk: int) -> None:
        self.offset = offset
        self.length = length
        self.written = written
        self.chunk = chunk
        super().__init__(
            f"a {chunk}-byte chunk would run past the end of part [{offset}, {offset + length}) "
            f"with {written} of its {length} bytes already written; nothing of it was written"
        )

    def __reduce__(self):
        # Keyword-only __init__: pickle (e.g. across processes) needs the fields by name.
        return (_rebuild, (self.offset, self.length, self.written, self.chunk))


def _rebuild(offset: int, length: int, written: int, chunk: int) -> PartOverflowError:
    return PartOverflowError(offset=offset, length=length, written=written, chunk=chunk)


def bind_python_writer(curl: pycurl.Curl, slow) -> None:
    """``slow`` as the plain pycurl WRITEFUNCTION of ``curl`` (what bind_writer falls back to)."""
    curl.setopt(pycurl.WRITEFUNCTION, slow, use_memoryview=True)
