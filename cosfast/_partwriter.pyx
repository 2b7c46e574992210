# cython: language_level=3, boundscheck=False, wraparound=False, embedsignature=True
# cython: auto_pickle=False
"""Compiled part writer: thin Cython layer over src_c/partwriter.c. Private; use
cosfast.partwriter (same interface as the pure-Python twin cosfast._partwriter_py).

The GIL guards the bookkeeping (counters, flags) and is released for every system call, so
parts fed from several threads (or by libcurl while Python runs) write in parallel."""
import os

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from libc.errno cimport EBADF
from libc.stdint cimport uint64_t

from cosfast._partwriter_common import (
    MAX_SIZE, PartOverflowError, check_part, check_range, os_error,
)
from cosfast.crc64 import KERNEL as _CRC64_KERNEL

cdef extern from "crc64.h":
    const char *cosfast_crc64_impl_name()
    int cosfast_crc64_select(const char *name)

cdef extern from "partwriter.h":
    int cosfast_pw_open(const char *path, int create, int *created) nogil
    int cosfast_pw_set_size(int fd, uint64_t size, int preallocate) nogil
    int cosfast_pw_write(int fd, const unsigned char *buf, size_t len, uint64_t offset,
                         uint64_t *crc, size_t *done) nogil
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

    create=True opens or creates ``path`` without truncating an existing file's bytes (resume
    reuses them), then makes it exactly ``size`` bytes: preallocated when ``preallocate`` (a
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

    def __cinit__(self):
        self._fd = -1
        self._closed = True

    def __init__(self, path, size, *, bint preallocate=True, bint create=True):
        if self._fd >= 0:
            raise RuntimeError("TempFile is already open")
        check_range("size", size, MAX_SIZE)
        self.path = os.fsdecode(path)
        self.size = size
        cdef bytes encoded = os.fsencode(self.path)
        cdef const char *c_path = encoded
        cdef uint64_t c_size = size
        cdef int c_create = create, c_prealloc = preallocate
        cdef int fd, rc, created = 0
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


cdef class PartSink:
    """pycurl WRITEFUNCTION for one byte range [offset, offset+length) of a TempFile.

    Each call pwrites the whole chunk at offset+written and continues the CRC over it, with
    the GIL released, and returns None. A chunk that would pass the end of the range writes
    nothing and stores PartOverflowError; an OSError is stored with its errno and the file's
    path. Either way the call returns 0, which makes libcurl abort the transfer with
    CURLE_WRITE_ERROR (pycurl would swallow a raised exception), and every later call returns
    0 without writing. ``written``/``crc`` let a retried or resumed part continue where it
    stopped. One sink is fed by one transfer at a time."""

    cdef readonly TempFile tempfile
    cdef readonly object offset
    cdef readonly object length
    cdef uint64_t _offset, _length, _written, _crc
    cdef readonly object error
    cdef bint _busy

    def __init__(self, TempFile tempfile not None, offset, length, *, crc=0, written=0):
        check_part(tempfile, offset, length, crc, written)
        self.tempfile = tempfile
        self.offset = offset
        self.length = length
        self._offset = offset
        self._length = length
        self._written = written
        self._crc = crc
        self.error = None

    @property
    def written(self):
        """Bytes of the part in the file so far (continues from the ``written`` given)."""
        return self._written

    @property
    def crc(self):
        """CRC-64/XZ of the part's first ``written`` bytes."""
        return self._crc

    @property
    def remaining(self):
        return self._length - self._written

    @property
    def done(self):
        return self._written == self._length

    def __call__(self, chunk):
        cdef Py_buffer view
        cdef uint64_t crc
        cdef size_t n, done = 0
        cdef int fd, rc
        if self.error is not None:
            return 0
        try:
            PyObject_GetBuffer(chunk, &view, PyBUF_SIMPLE)
        except (TypeError, BufferError) as exc:
            self.error = exc
            return 0
        try:
            n = <size_t>view.len
            if n > self._length - self._written:
                self.error = PartOverflowError(
                    offset=self.offset, length=self.length, written=self._written, chunk=n
                )
                return 0
            if n == 0:
                return None
            if self._busy:
                self.error = RuntimeError("a PartSink was called again while it was writing")
                return 0
            fd = self.tempfile._acquire()
            if fd < 0:
                self.error = os_error(EBADF, self.tempfile.path)
                return 0
            self._busy = True
            crc = self._crc
            with nogil:
                rc = cosfast_pw_write(fd, <const unsigned char *>view.buf, n,
                                      self._offset + self._written, &crc, &done)
            self._busy = False
            self.tempfile._release()
            self._written += done
            self._crc = crc
            if rc < 0:
                self.error = os_error(-rc, self.tempfile.path)
                return 0
            return None
        finally:
            PyBuffer_Release(&view)

    def raise_if_failed(self):
        """Re-raises the error a call stored, if any."""
        if self.error is not None:
            raise self.error

    def __repr__(self):
        return (
            f"PartSink(offset={self.offset}, length={self.length}, written={self._written}, "
            f"crc={self._crc:#018x}, error={self.error!r})"
        )
