"""Pure-Python part writer: the test oracle and the COSFAST_NO_EXTENSIONS=1 fallback.

Same interface and semantics as the compiled cosfast._partwriter (see its docstrings). It uses
whichever crc64 cosfast.crc64 has live, so its CRC is only as slow as that one."""
from __future__ import annotations

import collections
import errno
import os
import threading
import time
from typing import Optional, Union

from cosfast._partwriter_common import (
    MAX_SIZE, RECYCLE_ALWAYS, RECYCLE_NEVER, RECYCLE_PROBES_KEPT, RECYCLE_RING, RECYCLE_SLOW_NS, RECYCLE_SLOW_PROBES,
    RECYCLE_WHEN_SLOW, PartOverflowError, bind_python_writer, check_direct, check_part, check_range, os_error,
    recycle_mode, ring_capacity,
)
from cosfast.crc64 import KERNEL as CRC64_KERNEL
from cosfast.crc64 import crc64

__all__ = ["CRC64_KERNEL", "PartOverflowError", "PartSink", "TempFile", "auto_direct_paused", "bind_writer",
           "note_probe", "recycle_mode", "release_recycled", "reset_auto_direct"]

# Errors meaning "this file system cannot preallocate", not "no space": fall back to ftruncate.
_NO_PREALLOCATE = (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS)


def _open(path: str, create: bool) -> tuple[int, bool]:
    """(fd, created): O_EXCL first so a failed TempFile removes only a file it made."""
    if not create:
        return os.open(path, os.O_WRONLY | os.O_CLOEXEC), False
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644), True
        except FileExistsError:
            pass
        try:
            return os.open(path, os.O_WRONLY | os.O_CLOEXEC), False
        except FileNotFoundError:
            pass  # removed between the two opens: create it again


def _set_size(fd: int, size: int, preallocate: bool) -> None:
    if preallocate and size > 0:
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as exc:
            if exc.errno not in _NO_PREALLOCATE:
                raise
    if os.fstat(fd).st_size != size:
        os.ftruncate(fd, size)


# Page recycling (TempFile(recycle=True)), as in the compiled module. POSIX_FADV_DONTNEED starts
# writeback of the dirty pages itself and drops the clean ones; os has no sync_file_range.
RECYCLE_STEP = 4 * 1024 * 1024
RECYCLE_BUDGET = 64 * 1024 * 1024  # recycle="when-slow": see the compiled module
_recycle_budget = 0
# The last timed writes: slow or not, oldest first.
_probe_history: collections.deque[bool] = collections.deque(maxlen=RECYCLE_PROBES_KEPT)
_ring: list[tuple[int, bool]] = []  # (fd, wait for its writeback: it recycled all along)
_ring_capacity = RECYCLE_RING
_ring_pid = 0
_recycle_lock = threading.Lock()  # guards the ring and the budget (process-wide)


def _drop_clean(fd: int) -> None:
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass  # advice only


def _ring_take() -> list[tuple[int, bool]]:
    """The ring's descriptors of this process (a forked child closes its parent's copies)."""
    global _ring_pid, _ring_capacity
    if _ring_pid != os.getpid():
        for fd, _ in _ring:
            os.close(fd)
        _ring.clear()
        _ring_capacity = ring_capacity()
        _ring_pid = os.getpid()
    return _ring


def _ring_drop(fd: int, wait: bool) -> None:
    """Drops the file's pages, after its writeback if ``wait``, and closes ``fd`` (see the
    compiled module's ring)."""
    if wait:
        try:
            os.fdatasync(fd)  # os has no sync_file_range
        except OSError:
            pass  # the drop is advice; the download's own writes reported their errors
    _drop_clean(fd)
    os.close(fd)


def _ring_push(fd: int, wait: bool) -> None:
    with _recycle_lock:
        ring = _ring_take()
        oldest = ring.pop(0) if len(ring) >= _ring_capacity else None
        ring.append((fd, wait))
    if oldest is not None:
        _ring_drop(*oldest)


def note_probe(write_ns: int, nbytes: int) -> bool:
    """Records one timed write (see the compiled module); True if it granted the budget."""
    with _recycle_lock:
        return _note_probe(write_ns, nbytes)


def _note_probe(write_ns: int, nbytes: int) -> bool:
    global _recycle_budget
    if nbytes == 0:
        return False
    _probe_history.append(write_ns * _MIB > RECYCLE_SLOW_NS * nbytes)
    if _probe_history.count(True) < RECYCLE_SLOW_PROBES:
        return False
    _recycle_budget = RECYCLE_BUDGET
    _probe_history.clear()
    return True


def release_recycled() -> None:
    """Drops the pages of the closed recycling files in the ring and closes their descriptors
    (see the compiled module)."""
    with _recycle_lock:
        entries = list(_ring_take())
        _ring.clear()
    for fd, wait in entries:
        _ring_drop(fd, wait)


def auto_direct_paused() -> bool:
    """Always False: the twin never writes direct, so it never finds the disk slow."""
    return False


def reset_auto_direct() -> None:
    """Nothing to forget (see auto_direct_paused)."""


class TempFile:
    """An open file that parts are pwritten into (the engine picks the path and cleans it up)."""

    def __init__(
        self, path: Union[str, bytes, os.PathLike], size: int, *, preallocate: bool = True,
        create: bool = True, fd: int = -1, recycle: object = False,
    ) -> None:
        check_range("size", size, MAX_SIZE)
        self._recycle_mode = recycle_mode(recycle)
        self.path: str = os.fsdecode(path)
        self.size: int = size
        self.recycle = recycle
        self._unrecycled = 0
        self._lock = threading.Lock()
        # Serializes the sinks' pwrites into this file (see cosfast_pw_write in src_c).
        self._write_lock = threading.Lock()
        self._slow_windows = 0  # see PartSink's prefetch in the compiled module
        self._users = 0
        self._closed = True
        if fd >= 0:
            fd, created = os.dup(fd), False  # non-inheritable, like O_CLOEXEC
        else:
            fd, created = _open(self.path, create)
        try:
            _set_size(fd, size, preallocate)
        except OSError as exc:
            os.close(fd)
            if created:
                os.unlink(self.path)
            raise os_error(exc.errno, self.path) from None
        self._fd = fd
        self._closed = False

    @property
    def fd(self) -> int:
        return -1 if self._closed else self._fd

    @property
    def closed(self) -> bool:
        return self._closed

    def _acquire(self) -> int:
        with self._lock:
            if self._closed:
                return -1
            self._users += 1
            return self._fd

    def _release(self) -> None:
        with self._lock:
            self._users -= 1
            close_now = self._closed and self._users == 0 and self._fd >= 0
            fd, self._fd = self._fd, (-1 if close_now else self._fd)
        if close_now:
            os.close(fd)

    def _sync(self, sync) -> None:
        fd = self._acquire()
        if fd < 0:
            raise os_error(errno.EBADF, self.path)
        try:
            sync(fd)
        except OSError as exc:
            raise os_error(exc.errno, self.path) from None
        finally:
            self._release()

    def fdatasync(self) -> None:
        self._sync(os.fdatasync)

    def fsync(self) -> None:
        self._sync(os.fsync)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._users:
                return  # the last running write closes it
            fd, self._fd = self._fd, -1
        if self._recycling():
            _drop_clean(fd)  # starts writeback of the rest
            _ring_push(os.dup(fd), self._recycle_mode == RECYCLE_ALWAYS)
        os.close(fd)

    def _recycling(self) -> bool:
        return self._recycle_mode == RECYCLE_ALWAYS or (
            self._recycle_mode == RECYCLE_WHEN_SLOW and _recycle_budget > 0)

    def _probes(self, n: int) -> bool:
        """Whether a write of ``n`` bytes should be timed to renew the recycling budget."""
        return self._recycle_mode == RECYCLE_WHEN_SLOW and _recycle_budget == 0 and n >= _PROBE_MIN

    def _note_written(self, fd: int, n: int, write_ns: int, probed: bool) -> None:
        """After a buffered write of ``n`` bytes (timed if ``probed``): a recycling step when one
        is due."""
        global _recycle_budget
        with _recycle_lock:
            if probed:
                _note_probe(write_ns, n)
            if not n or not self._recycling():
                return
            if self._recycle_mode == RECYCLE_WHEN_SLOW:
                _recycle_budget -= min(n, _recycle_budget)
            self._unrecycled += n
            due = self._unrecycled >= RECYCLE_STEP
            if due:
                self._unrecycled = 0
        if due:
            _drop_clean(fd)

    def __enter__(self) -> "TempFile":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0 and not self._users:
            os.close(self._fd)
            self._fd = -1

    def __repr__(self) -> str:
        return f"TempFile(path={self.path!r}, size={self.size}, closed={self._closed})"


# Staging buffers are recycled, as in the compiled module (see there for why).
_stage_pool: list = []
_STAGE_POOL_MAX = 64


def _take_stage(size: int) -> bytearray:
    while _stage_pool:
        buf = _stage_pool.pop()
        if len(buf) == size:
            return buf
    return bytearray(size)


def _give_stage(buf: bytearray) -> None:
    if len(_stage_pool) < _STAGE_POOL_MAX:
        _stage_pool.append(buf)


# Prefetch: see the compiled module (_partwriter.pyx) for why and the measurements.
_PREFETCH_WINDOW = 32 * 1024 * 1024
_SLOW_WINDOWS = 8
_PROBE_MIN = 256 * 1024
_PROBE_SLOW_NS = 700 * 1000  # per MiB
_MIB = 1024 * 1024


def _prefetch(fd: int, offset: int, length: int) -> None:
    try:
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass  # no prefetch, nothing worse


class PartSink:
    """pycurl WRITEFUNCTION for one byte range [offset, offset+length) of a TempFile (see the
    compiled module for the contract, staging and prefetch included). ``direct`` and
    ``finish_later`` are accepted and have no effect: the twin writes every byte through the
    page cache (Python has no native AIO to keep the receiving thread off the disk), so
    ``direct`` is False, ``direct_writes`` stays 0, nothing is ever ``writing`` and ``poll()``
    is always True."""

    direct = False
    direct_writes = 0
    writing = False

    def __init__(
        self, tempfile: TempFile, offset: int, length: int, *, crc: int = 0, written: int = 0,
        stage_size: int = 0, prefetch: bool = False, direct: Union[bool, str] = False, finish_later: bool = False,
    ) -> None:
        if not isinstance(tempfile, TempFile):
            raise TypeError(f"tempfile must be a TempFile, not {type(tempfile).__name__}")
        check_part(tempfile, offset, length, crc, written)
        check_direct(direct)
        self.direct_auto = direct == "auto"
        if not isinstance(stage_size, int) or stage_size < 0:
            raise ValueError(f"stage_size must be >= 0, got {stage_size}")
        self.tempfile = tempfile
        self.offset = offset
        self.length = length
        self.stage_size = stage_size
        self.error: Optional[BaseException] = None
        self._flushed = written
        self._crc = crc
        self._stage: Optional[bytearray] = None
        self._staged = 0
        self._busy = False
        self.prefetch = bool(prefetch) and tempfile._recycle_mode == RECYCLE_NEVER
        self._prefetched_until = 0
        self.finish_later = bool(finish_later)

    @property
    def written(self) -> int:
        return self._flushed + self._staged

    def poll(self) -> bool:
        return True

    @property
    def crc(self) -> int:
        if self._staged:
            return crc64(memoryview(self._stage)[:self._staged], self._crc)
        return self._crc

    @property
    def remaining(self) -> int:
        return self.length - self.written

    @property
    def done(self) -> bool:
        return self.written == self.length

    def __call__(self, chunk) -> Optional[int]:
        if self.error is not None:
            return 0
        try:
            view = _byte_view(chunk)
        except (TypeError, BufferError) as exc:
            self._fail(exc)
            return 0
        n = view.nbytes
        if n > self.length - self.written:
            self._fail(PartOverflowError(offset=self.offset, length=self.length,
                                         written=self.written, chunk=n))
            return 0
        if n == 0:
            return None
        if self._busy:
            self.error = RuntimeError("a PartSink was called again while it was writing")
            return 0
        if self.stage_size == 0:
            return None if self._write(view) else 0
        taken = 0
        while taken < n:
            if self._stage is None:
                self._stage = _take_stage(self.stage_size)
            room = min(self.stage_size - self._staged, n - taken)
            self._stage[self._staged:self._staged + room] = view[taken:taken + room]
            self._staged += room
            taken += room
            if self._staged == self.stage_size and not self._flush_stage():
                return 0
        if self.written == self.length and not self._flush_stage():
            return 0
        return None

    def flush(self) -> None:
        if self.error is None:
            self._flush_stage()
        self.raise_if_failed()

    def _flush_stage(self) -> bool:
        ok = True
        if self._staged:
            staged, self._staged = self._staged, 0
            ok = self._write(memoryview(self._stage)[:staged])
        if self._stage is not None and (not ok or self._flushed == self.length):
            _give_stage(self._stage)
            self._stage = None
        return ok

    def _write(self, view: memoryview) -> bool:
        fd = self.tempfile._acquire()
        if fd < 0:
            self.error = os_error(errno.EBADF, self.tempfile.path)
            return False
        self._busy = True
        try:
            self._write_all(fd, view)
        except OSError as exc:
            self.error = os_error(exc.errno, self.tempfile.path)
            return False
        finally:
            self._busy = False
            self.tempfile._release()
        return True

    def _fail(self, error: BaseException) -> None:
        if self._flush_stage():
            self.error = error

    def _write_all(self, fd: int, view: memoryview) -> None:
        # _flushed and _crc move together after every pwrite, so a failure part way leaves them
        # describing exactly the bytes in the file (os.pwrite retries EINTR itself).
        start = self.offset + self._flushed
        part_end = self.offset + self.length
        new_window = self.prefetch and start >= self._prefetched_until
        prefetch_first = new_window and self.tempfile._slow_windows > 0
        if prefetch_first:
            self.tempfile._slow_windows -= 1
            self._prefetched_until = min(start + _PREFETCH_WINDOW, part_end)
            _prefetch(fd, start, self._prefetched_until - start)
        total = 0
        write_ns = 0
        recycle_probe = self.tempfile._probes(len(view))
        while total < len(view):
            with self.tempfile._write_lock:
                began = time.perf_counter_ns()
                n = os.pwrite(fd, view[total:], self.offset + self._flushed)
                write_ns += time.perf_counter_ns() - began
            if n == 0:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            self._crc = crc64(view[total:total + n], self._crc)
            self._flushed += n
            total += n
        self.tempfile._note_written(fd, total, write_ns, recycle_probe)
        if (new_window and not prefetch_first and total >= _PROBE_MIN
                and write_ns * _MIB > _PROBE_SLOW_NS * total):
            self.tempfile._slow_windows = _SLOW_WINDOWS
            ahead = min(start + total + _PREFETCH_WINDOW, part_end)
            if ahead > start + total:
                _prefetch(fd, start + total, ahead - start - total)
                self._prefetched_until = ahead

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error

    def __repr__(self) -> str:
        return (
            f"PartSink(offset={self.offset}, length={self.length}, written={self.written}, "
            f"crc={self.crc:#018x}, error={self.error!r})"
        )


def _byte_view(chunk) -> memoryview:
    """A flat byte view of a contiguous buffer, as PyBUF_SIMPLE gives the compiled module."""
    view = memoryview(chunk)
    if not view.c_contiguous:
        raise BufferError("a PartSink chunk must be a contiguous buffer")
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def bind_writer(curl, sink: PartSink, slow) -> None:
    """``slow`` as the WRITEFUNCTION of ``curl`` (the compiled module puts a C callback in front)."""
    bind_python_writer(curl, slow)
