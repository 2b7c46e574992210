# cython: language_level=3, boundscheck=False, wraparound=False, embedsignature=True
# cython: auto_pickle=False
"""Compiled part writer: thin Cython layer over src_c/partwriter.c. Private; use
cosfast.partwriter (same interface as the pure-Python twin cosfast._partwriter_py).

The GIL guards the bookkeeping (counters, flags) and is released for every system call, so
parts fed from several threads (or by libcurl while Python runs) write in parallel."""
import os

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING
from libc.string cimport memcpy
from libc.errno cimport EBADF
from libc.stdint cimport uint64_t

from cosfast._partwriter_common import (
    MAX_SIZE, PartOverflowError, check_part, check_range, os_error,
)
from cosfast.crc64 import KERNEL as _CRC64_KERNEL
from cosfast.crc64 import crc64

cdef extern from "crc64.h":
    const char *cosfast_crc64_impl_name()
    int cosfast_crc64_select(const char *name)

cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    int pthread_mutex_init(pthread_mutex_t *mutex, const void *attr)
    int pthread_mutex_destroy(pthread_mutex_t *mutex)

cdef extern from "partwriter.h":
    int cosfast_pw_open(const char *path, int create, int *created) nogil
    int cosfast_pw_dup(int fd) nogil
    int cosfast_pw_set_size(int fd, uint64_t size, int preallocate) nogil
    int cosfast_pw_write(int fd, pthread_mutex_t *serialize, const unsigned char *buf, size_t len,
                         uint64_t offset, uint64_t *crc, size_t *done) nogil
    int cosfast_pw_write_timed(int fd, pthread_mutex_t *serialize, const unsigned char *buf,
                               size_t len, uint64_t offset, uint64_t *crc, size_t *done,
                               uint64_t *write_ns) nogil
    int cosfast_pw_prefetch(int fd, uint64_t offset, uint64_t len) nogil
    int cosfast_pw_fdatasync(int fd) nogil
    int cosfast_pw_fsync(int fd) nogil
    int cosfast_pw_close(int fd) nogil

# This module links its own copy of the CRC dispatcher: use the kernel cosfast.crc64 picked,
# so COSFAST_CRC64_IMPL governs both.
if cosfast_crc64_select(_CRC64_KERNEL.encode()) != 0:
    raise ImportError(f"CRC-64 kernel {_CRC64_KERNEL!r} is not built into cosfast._partwriter")

#: Name of the CRC-64 kernel the part writer uses (always the one cosfast.crc64 uses).
CRC64_KERNEL = cosfast_crc64_impl_name().decode()


cdef class TempFile:
    """An open file that parts are pwritten into (the engine picks the path and cleans it up).

    ``fd``: a descriptor of ``path`` the caller already has open for writing (say, the one it
    holds a lock on): the TempFile works on a duplicate of it instead of opening the path again,
    and the caller still owns (and closes) its own. Otherwise create=True opens or creates
    ``path`` without truncating an existing file's bytes (resume reuses them), then makes it exactly ``size`` bytes: preallocated when ``preallocate`` (a
    full disk raises ``OSError(ENOSPC)`` here, before any byte is fetched; a file system that
    cannot preallocate gets a sparse file), else sparse. A file this call created is removed
    again if sizing it fails. create=False: the file must exist (resume).

    close() is idempotent. While a PartSink is inside a write, close() only marks the file
    closed and that write closes the descriptor when it returns, so a descriptor number is
    never reused under a running pwrite; later writes fail with EBADF."""

    cdef readonly str path
    cdef readonly object size
    cdef int _fd
    cdef bint _closed
    cdef Py_ssize_t _users  # system calls running on _fd with the GIL released
    # Serializes the sinks' pwrites into this file (see cosfast_pw_write).
    cdef pthread_mutex_t _write_lock
    # New prefetch windows still to prefetch before writing, after a slow probe (see PartSink).
    cdef int _slow_windows

    def __cinit__(self):
        self._fd = -1
        self._closed = True
        pthread_mutex_init(&self._write_lock, NULL)

    def __init__(self, path, size, *, bint preallocate=True, bint create=True, int fd=-1):
        if self._fd >= 0:
            raise RuntimeError("TempFile is already open")
        check_range("size", size, MAX_SIZE)
        self.path = os.fsdecode(path)
        self.size = size
        cdef bytes encoded = os.fsencode(self.path)
        cdef const char *c_path = encoded
        cdef uint64_t c_size = size
        cdef int c_create = create, c_prealloc = preallocate
        cdef int rc, created = 0
        if fd >= 0:
            fd = cosfast_pw_dup(fd)
        else:
            with nogil:
                fd = cosfast_pw_open(c_path, c_create, &created)
        if fd < 0:
            raise os_error(-fd, self.path)
        with nogil:
            rc = cosfast_pw_set_size(fd, c_size, c_prealloc)
        if rc < 0:
            cosfast_pw_close(fd)
            if created:
                os.unlink(self.path)
            raise os_error(-rc, self.path)
        self._fd = fd
        self._closed = False

    def __dealloc__(self):
        # No sink can be writing: every sink holds a reference to this object.
        if self._fd >= 0:
            cosfast_pw_close(self._fd)
        pthread_mutex_destroy(&self._write_lock)

    @property
    def fd(self):
        """The descriptor, or -1 once closed."""
        return -1 if self._closed else self._fd

    @property
    def closed(self):
        return self._closed

    cdef int _acquire(self) except -2:
        """The fd for one GIL-released system call, or -1 if closed; pair with _release."""
        if self._closed:
            return -1
        self._users += 1
        return self._fd

    cdef int _release(self) except -1:
        self._users -= 1
        if self._closed and self._users == 0 and self._fd >= 0:
            cosfast_pw_close(self._fd)
            self._fd = -1
        return 0

    cdef int _sync(self, bint data_only) except -1:
        cdef int fd = self._acquire()
        cdef int rc
        if fd < 0:
            raise os_error(EBADF, self.path)
        with nogil:
            rc = cosfast_pw_fdatasync(fd) if data_only else cosfast_pw_fsync(fd)
        self._release()
        if rc < 0:
            raise os_error(-rc, self.path)
        return 0

    def fdatasync(self):
        """Flushes the written bytes (and the size) to stable storage."""
        self._sync(True)

    def fsync(self):
        """Flushes the bytes and all metadata to stable storage."""
        self._sync(False)

    def close(self):
        """Closes the file; idempotent (see the class docstring for in-flight writes)."""
        cdef int fd, rc
        if self._closed:
            return
        self._closed = True
        if self._users:
            return  # the last running write closes it
        fd = self._fd
        self._fd = -1
        rc = cosfast_pw_close(fd)
        if rc < 0:
            raise os_error(-rc, self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return f"TempFile(path={self.path!r}, size={self.size}, closed={self._closed})"


# Staging buffers are recycled, never freed: on a VM, first-touch pages are the expensive part of
# a write, and a download creates a sink per part. The pool is bounded by the sinks alive at once.
cdef list _stage_pool = []
cdef Py_ssize_t _STAGE_POOL_MAX = 64


cdef bytearray _take_stage(Py_ssize_t size):
    cdef bytearray buf
    while _stage_pool:
        buf = _stage_pool.pop()
        if len(buf) == size:
            return buf
    return bytearray(size)


cdef void _give_stage(bytearray buf):
    if len(_stage_pool) < _STAGE_POOL_MAX:
        _stage_pool.append(buf)


# Prefetch (PartSink(prefetch=True)). On a VM whose host takes back the memory the guest frees,
# buffered writes that need fresh page-cache pages fault them in one 4 KiB page at a time and run
# at ~1 GB/s here, while readahead allocates large folios, and the writes that follow it run at
# page-cache speed: measured on this VM, 1 GiB in 1 MiB pwrites went from 0.9-1.1 GB/s (1.0 CPU
# s) to 1.7-1.8 GB/s (0.6 CPU s). Where pages are recycled the same readahead is pure extra work
# (6 GB/s without it). So a sink times its plain writes, and only a slow one (fewer than
# _PROBE_SLOW_NS per MiB) makes it prefetch the next _PREFETCH_WINDOW bytes of its part. A slow
# probe also marks the whole file slow for its next _SLOW_WINDOWS windows: every sink then
# prefetches a new window *before* writing into it (so not even its first stage lands in small
# pages), and only then probes again, in case the page cache has become fast.
cdef uint64_t _PREFETCH_WINDOW = 32 * 1024 * 1024
cdef int _SLOW_WINDOWS = 8
cdef uint64_t _PROBE_MIN = 256 * 1024  # smaller writes say too little about the page cache
cdef uint64_t _PROBE_SLOW_NS = 700 * 1000  # per MiB: slower than ~1.5 GB/s means fresh pages
cdef uint64_t _MIB = 1024 * 1024


cdef class PartSink:
    """pycurl WRITEFUNCTION for one byte range [offset, offset+length) of a TempFile.

    Each call takes the whole chunk for the bytes at offset+written and returns None. With
    ``stage_size`` 0 the chunk is pwritten at once; with a stage, chunks are gathered into a
    recycled buffer of that size and pwritten when it is full, when the part is complete, or on
    ``flush()`` (libcurl hands bodies over in 16 KiB pieces: one large pwrite costs the kernel
    far less than 64 small ones). Either way the CRC-64 runs over the bytes as they are written,
    with the GIL released. A chunk that would pass the end of the range writes nothing and
    stores PartOverflowError; an OSError is stored with its errno and the file's path. Either
    way the call returns 0, which makes libcurl abort the transfer with CURLE_WRITE_ERROR (pycurl
    would swallow a raised exception), and every later call returns 0 without writing. After an
    error, staged bytes are flushed first when possible, and ``written``/``crc`` describe
    exactly the bytes that reached the file. ``written``/``crc`` given to the constructor let a
    retried or resumed part continue where it stopped. One sink is fed by one transfer at a
    time."""

    cdef readonly TempFile tempfile
    cdef readonly object offset
    cdef readonly object length
    cdef uint64_t _offset, _length, _flushed, _crc
    cdef readonly object error
    cdef bint _busy
    cdef readonly Py_ssize_t stage_size
    cdef bytearray _stage
    cdef Py_ssize_t _staged
    cdef readonly bint prefetch
    cdef uint64_t _prefetched_until  # absolute offset: writes below it were prefetched

    def __init__(self, TempFile tempfile not None, offset, length, *, crc=0, written=0,
                 Py_ssize_t stage_size=0, bint prefetch=False):
        check_part(tempfile, offset, length, crc, written)
        if stage_size < 0:
            raise ValueError(f"stage_size must be >= 0, got {stage_size}")
        self.tempfile = tempfile
        self.offset = offset
        self.length = length
        self._offset = offset
        self._length = length
        self._flushed = written
        self._crc = crc
        self.error = None
        self.stage_size = stage_size
        self._stage = None
        self._staged = 0
        self.prefetch = prefetch
        self._prefetched_until = 0

    @property
    def written(self):
        """Bytes of the part taken so far (continues from the ``written`` given), staged ones
        included."""
        return self._flushed + self._staged

    @property
    def crc(self):
        """CRC-64/XZ of the part's first ``written`` bytes."""
        if self._staged:
            return crc64(memoryview(self._stage)[:self._staged], self._crc)
        return self._crc

    @property
    def remaining(self):
        return self._length - self._flushed - self._staged

    @property
    def done(self):
        return self._flushed + self._staged == self._length

    def __call__(self, chunk):
        cdef Py_buffer view
        cdef size_t n, room
        cdef const unsigned char *src
        if self.error is not None:
            return 0
        try:
            PyObject_GetBuffer(chunk, &view, PyBUF_SIMPLE)
        except (TypeError, BufferError) as exc:
            self._fail(exc)
            return 0
        try:
            n = <size_t>view.len
            if n > self._length - self._flushed - self._staged:
                self._fail(PartOverflowError(offset=self.offset, length=self.length,
                                             written=self._flushed + self._staged, chunk=n))
                return 0
            if n == 0:
                return None
            if self._busy:
                self.error = RuntimeError("a PartSink was called again while it was writing")
                return 0
            src = <const unsigned char *>view.buf
            if self.stage_size == 0:
                return None if self._write(src, n) == 0 else 0
            while n:
                if self._stage is None:
                    self._stage = _take_stage(self.stage_size)
                room = <size_t>(self.stage_size - self._staged)
                if room > n:
                    room = n
                memcpy(PyByteArray_AS_STRING(self._stage) + self._staged, src, room)
                self._staged += room
                src += room
                n -= room
                if self._staged == self.stage_size and self._flush_stage() != 0:
                    return 0
            if self._flushed + self._staged == self._length and self._flush_stage() != 0:
                return 0
            return None
        finally:
            PyBuffer_Release(&view)

    def flush(self):
        """Writes the staged bytes now; raises the stored error if that (or an earlier call)
        failed."""
        if self.error is None:
            self._flush_stage()
        self.raise_if_failed()

    cdef int _flush_stage(self) except -2:
        """Writes the staged bytes and recycles the stage; 0, or -1 with the error stored."""
        cdef Py_ssize_t staged = self._staged
        cdef int rc = 0
        if staged:
            self._staged = 0
            rc = self._write(<const unsigned char *>PyByteArray_AS_STRING(self._stage), <size_t>staged)
        if self._stage is not None and (rc != 0 or self._flushed == self._length):
            _give_stage(self._stage)
            self._stage = None
        return rc

    cdef int _write(self, const unsigned char *buf, size_t n) except -2:
        """pwrite + CRC of n bytes at offset+flushed, GIL released; 0, or -1 with the error
        stored (``_flushed``/``_crc`` then cover exactly what reached the file)."""
        cdef uint64_t crc, write_ns = 0, ahead = 0
        cdef uint64_t start = self._offset + self._flushed
        cdef uint64_t part_end = self._offset + self._length
        cdef size_t done = 0
        cdef int fd, rc
        cdef TempFile tempfile = self.tempfile
        cdef bint new_window = self.prefetch and start >= self._prefetched_until
        cdef bint prefetch_first = False
        fd = tempfile._acquire()
        if fd < 0:
            self.error = os_error(EBADF, self.tempfile.path)
            return -1
        self._busy = True
        crc = self._crc
        if new_window and tempfile._slow_windows > 0:
            tempfile._slow_windows -= 1
            prefetch_first = True
            ahead = start + _PREFETCH_WINDOW
            if ahead > part_end:
                ahead = part_end
        with nogil:
            if prefetch_first:
                cosfast_pw_prefetch(fd, start, ahead - start)
            if not self.prefetch:
                rc = cosfast_pw_write(fd, &tempfile._write_lock, buf, n, start, &crc, &done)
            else:
                rc = cosfast_pw_write_timed(fd, &tempfile._write_lock, buf, n, start, &crc, &done, &write_ns)
        if prefetch_first:
            self._prefetched_until = ahead
        elif (new_window and rc == 0 and n >= _PROBE_MIN and write_ns * _MIB > _PROBE_SLOW_NS * n):
            tempfile._slow_windows = _SLOW_WINDOWS
            ahead = start + n + _PREFETCH_WINDOW
            if ahead > part_end:
                ahead = part_end
            if ahead > start + n:
                with nogil:
                    cosfast_pw_prefetch(fd, start + n, ahead - start - n)
                self._prefetched_until = ahead
        self._busy = False
        self.tempfile._release()
        self._flushed += done
        self._crc = crc
        if rc < 0:
            self.error = os_error(-rc, self.tempfile.path)
            return -1
        return 0

    cdef void _fail(self, object error):
        """Stores ``error`` after writing what is staged (whose own failure wins)."""
        if self._flush_stage() == 0:
            self.error = error

    def raise_if_failed(self):
        """Re-raises the error a call stored, if any."""
        if self.error is not None:
            raise self.error

    def __repr__(self):
        return (
            f"PartSink(offset={self.offset}, length={self.length}, written={self.written}, "
            f"crc={self.crc:#018x}, error={self.error!r})"
        )
