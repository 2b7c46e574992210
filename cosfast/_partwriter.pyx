# cython: language_level=3, boundscheck=False, wraparound=False, embedsignature=True
# cython: auto_pickle=False
"""Compiled part writer: thin Cython layer over src_c/partwriter.c (positioned writes with the
CRC) and src_c/directwrite.c (O_DIRECT stages through native AIO). Private; use
cosfast.partwriter (same interface as the pure-Python twin cosfast._partwriter_py).

The GIL guards the bookkeeping (counters, flags) and is released for every system call, so
parts fed from several threads (or by libcurl while Python runs) write in parallel."""
import os

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.object cimport PyObject, PyTypeObject
from libc.string cimport memcpy
from libc.stdlib cimport free
from libc.errno cimport EAGAIN, EBADF, EIO
from libc.stdint cimport int64_t, uint64_t, uintptr_t
from posix.unistd cimport getpid

from cosfast._partwriter_common import (
    MAX_SIZE, RECYCLE_PROBES_KEPT, RECYCLE_RING, RECYCLE_SLOW_NS, RECYCLE_SLOW_PROBES, PartOverflowError,
    bind_python_writer, check_direct, check_part, check_range, os_error, recycle_mode, ring_capacity,
)
from cosfast.crc64 import KERNEL as _CRC64_KERNEL

cdef extern from "crc64.h":
    const char *cosfast_crc64_impl_name()
    uint64_t cosfast_crc64_update(uint64_t crc, const unsigned char *buf, size_t len) nogil
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
    void cosfast_pw_recycle_step(int fd) nogil
    void cosfast_pw_writeback(int fd) nogil
    void cosfast_pw_drop_clean(int fd) nogil
    void cosfast_pw_drop_all(int fd) nogil

cdef extern from "curlwrite.h":
    ctypedef size_t (*cosfast_curl_write_fn)(char *ptr, size_t size, size_t nmemb, void *userdata) noexcept nogil
    int cosfast_curl_resolve(const void *address)
    void *cosfast_curl_bind_handle(void *const *slot, const void *object)
    int cosfast_curl_set_writer(void *handle, cosfast_curl_write_fn fn, void *userdata)

cdef extern from "directwrite.h":
    unsigned int COSFAST_DW_ALIGN
    int cosfast_dw_open(int fd) nogil
    int cosfast_dw_setup(unsigned depth, uint64_t *ctx) nogil
    int cosfast_dw_submit(uint64_t ctx, int fd, const unsigned char *buf, size_t len, uint64_t offset,
                          uint64_t tag) nogil
    int cosfast_dw_reap(uint64_t ctx, int min_done, int max, uint64_t *tags, int64_t *results) nogil
    int cosfast_dw_destroy(uint64_t ctx) nogil
    unsigned char *cosfast_dw_alloc(size_t size) nogil

# This module links its own copy of the CRC dispatcher: use the kernel cosfast.crc64 picked,
# so COSFAST_CRC64_IMPL governs both.
if cosfast_crc64_select(_CRC64_KERNEL.encode()) != 0:
    raise ImportError(f"CRC-64 kernel {_CRC64_KERNEL!r} is not built into cosfast._partwriter")

#: Name of the CRC-64 kernel the part writer uses (always the one cosfast.crc64 uses).
CRC64_KERNEL = cosfast_crc64_impl_name().decode()

# Direct stage writes (PartSink(direct=True); why: src_c/directwrite.h). A full stage at an
# aligned offset is written with O_DIRECT through native AIO when the sink has a free slot, and
# through the page cache otherwise, so the disk takes what it can while the receiving thread never
# waits for it. It pays where the disk keeps up with the download, or the page cache is very slow
# (1 GiB from nginx, buffered downloads at 0.75-0.85 GB/s: 1.01-1.09x the speed at two thirds of
# the CPU; on a 0.4-0.8 GB/s disk with buffered downloads at 1.15-1.4 GB/s: 0.69-0.85x the speed;
# on a 1.5 GB/s disk: 1.18x at 0.8x the CPU), which direct="auto" judges below, and the bytes
# written direct are not in the page cache afterwards (which is what a user staging more data than
# memory wants). A stage in flight is a whole staging buffer: _DW_MAX_IN_FLIGHT bounds the memory
# all sinks together hold for them. A sink waits for its writes when its part is complete, so the
# last _DW_TAIL_STAGES stages of a part go through the page cache (the writes still in flight then
# are few and nearly done); a ``finish_later`` sink does not wait (its owner polls), so all its
# stages may go direct, the aligned head of the last one included.
cdef enum:
    _DW_DEPTH = 4  # slots of one sink
    _DW_MAX_IN_FLIGHT = 12  # slots of all sinks together: 12 MiB of 1 MiB stages
    _DIRECT_UNTRIED = -2
    _DIRECT_UNAVAILABLE = -1
cdef uint64_t _DW_TAIL_STAGES = 2
cdef size_t _DW_MIN_WRITE = 64 * 1024  # smaller tails are not worth a direct write
cdef int _dw_in_flight = 0  # direct writes in flight, all sinks (GIL-guarded)

# direct="auto" (a download's default for multi-part objects): direct stages pay where the disk
# takes them as fast as they arrive, and cost speed where it does not. On a disk that writes
# 1.4-1.6 GB/s (dd oflag=direct), 1 GiB from nginx went 1.18x as fast at 0.66 instead of 0.83
# CPU s; on one that wrote 0.4-0.8 GB/s, 0.69-0.85x as fast (bench/README.md). A slow disk
# shows as stages that find no free slot, because the writes before them have not ended: 1 GiB
# from nginx with every stage offered to the disk, counted per stage (5 parts at a time): on the
# 1.5 GB/s disk 74-80% went direct, through a 500 MB/s throttle (blkio) 14%. (Some stages find
# no slot on any disk: a completed write holds its slot until its sink next looks.) So the auto
# sinks of the process count their full stages: when fewer than _AUTO_MIN_SHARE_PERCENT of a
# window of _AUTO_WINDOW went direct, auto sinks write buffered for the next _AUTO_PAUSE
# stages, then try again (the disk may have been busy with something else). GIL-guarded.
cdef enum:
    _AUTO_WINDOW = 128  # 128 MiB of 1 MiB stages
    _AUTO_MIN_SHARE_PERCENT = 40
    _AUTO_PAUSE = 512  # 512 MiB of 1 MiB stages
cdef int _auto_seen = 0  # full stages of auto sinks in this window
cdef int _auto_went_direct = 0  # of which went direct
cdef int _auto_paused_for = 0  # stages still to write buffered after a slow window


cdef bint _auto_direct_paused() noexcept:
    """Whether an auto sink's full stage must go through the page cache (counts it if so)."""
    global _auto_paused_for
    if _auto_paused_for == 0:
        return False
    _auto_paused_for -= 1
    return True


cdef void _auto_direct_note(bint went_direct) noexcept:
    """Counts an auto sink's full stage that was offered to the disk; judges each window."""
    global _auto_seen, _auto_went_direct, _auto_paused_for
    _auto_seen += 1
    _auto_went_direct += went_direct
    if _auto_seen == _AUTO_WINDOW:
        if _auto_went_direct * 100 < _AUTO_WINDOW * _AUTO_MIN_SHARE_PERCENT:
            _auto_paused_for = _AUTO_PAUSE
        _auto_seen = 0
        _auto_went_direct = 0


def auto_direct_paused():
    """True while sinks with direct="auto" write through the page cache because, in this
    process, too few of their recent stages could go direct (the disk did not keep up)."""
    return _auto_paused_for > 0


def reset_auto_direct():
    """Forgets the auto sinks' record: the next stages are offered to the disk again (for a
    long-running process that knows the disk has changed; the tests start each from here)."""
    global _auto_seen, _auto_went_direct, _auto_paused_for
    _auto_seen = 0
    _auto_went_direct = 0
    _auto_paused_for = 0

# AIO contexts are recycled like the stages: io_destroy waits for an RCU grace period (~30 ms
# here) and a download uses one context per part. A context is only pooled with nothing in
# flight. A forked child does not inherit its parent's contexts: the pool belongs to _aio_pid.
cdef enum:
    _AIO_POOL_MAX = 64
cdef uint64_t _aio_pool[_AIO_POOL_MAX]
cdef int _aio_pool_count = 0
cdef int _aio_pid = 0


cdef uint64_t _take_aio() noexcept:
    """An idle AIO context of _DW_DEPTH slots, or 0 if the kernel refuses one."""
    global _aio_pool_count, _aio_pid
    cdef uint64_t ctx = 0
    if _aio_pid != getpid():
        _aio_pool_count = 0
        _aio_pid = getpid()
    if _aio_pool_count:
        _aio_pool_count -= 1
        return _aio_pool[_aio_pool_count]
    if cosfast_dw_setup(_DW_DEPTH, &ctx) != 0:
        return 0
    return ctx


cdef void _give_aio(uint64_t ctx) noexcept:
    global _aio_pool_count
    if _aio_pid == getpid() and _aio_pool_count < _AIO_POOL_MAX:
        _aio_pool[_aio_pool_count] = ctx
        _aio_pool_count += 1
    else:
        cosfast_dw_destroy(ctx)


# Timing a write tells how expensive the page cache is right now (prefetch and recycling below).
cdef uint64_t _PROBE_MIN = 256 * 1024  # smaller writes say too little about the page cache
cdef uint64_t _PROBE_SLOW_NS = 700 * 1000  # per MiB: slower than ~1.5 GB/s means fresh pages
cdef uint64_t _MIB = 1024 * 1024

# Page recycling (TempFile(recycle=...)); see cosfast_pw_recycle_step in src_c/partwriter.h.
# Measured here (1 GiB of 1 MiB pwrites, settled memory): 0.5-0.8 GB/s at 1.4-2.3 CPU s without,
# 1.1-2.1 GB/s at 0.3-0.95 CPU s with a step every 4-8 MiB. A step every RECYCLE_STEP bytes:
RECYCLE_STEP = 4 * 1024 * 1024
cdef uint64_t RECYCLE_STEP_C = RECYCLE_STEP
# recycle="when-slow": where the pages written into are cheap anyway (freed a moment ago, or on
# a machine whose freed memory stays with the kernel) the steps only cost time (10-25% measured
# here), so such a file recycles only while the page cache is slow: its writes of at least
# _PROBE_MIN bytes are timed, and once enough of the last ones were slow (_partwriter_common's
# RECYCLE_SLOW_PROBES says how many, and why) every such file in the process is granted
# RECYCLE_BUDGET bytes of recycling; once they are used, writes are timed again. (Recycling
# makes the next writes fast; when the freed pages run out they are slow again and the budget
# is renewed.) GIL-guarded.
RECYCLE_BUDGET = 64 * 1024 * 1024
cdef uint64_t _recycle_budget = 0
cdef uint64_t _RECYCLE_SLOW_NS_C = RECYCLE_SLOW_NS
cdef unsigned int _PROBES_KEPT_MASK = (1 << RECYCLE_PROBES_KEPT) - 1
cdef int _RECYCLE_SLOW_PROBES_C = RECYCLE_SLOW_PROBES
cdef unsigned int _probe_history = 0  # the last timed writes, a bit each (1: slow), newest lowest


cdef bint _note_probe(uint64_t write_ns, uint64_t n) noexcept:
    global _probe_history, _recycle_budget
    cdef unsigned int bits
    cdef int slow = 0
    if n == 0:
        return False
    _probe_history = ((_probe_history << 1) | (write_ns * _MIB > _RECYCLE_SLOW_NS_C * n)) & _PROBES_KEPT_MASK
    bits = _probe_history
    while bits:
        slow += bits & 1
        bits >>= 1
    if slow < _RECYCLE_SLOW_PROBES_C:
        return False
    _recycle_budget = RECYCLE_BUDGET
    _probe_history = 0
    return True


def note_probe(write_ns, nbytes):
    """Records one timed write of ``nbytes`` that took ``write_ns`` (as a "when-slow" file's
    writes of at least 256 KiB are while no recycling budget is left); True if it granted the
    budget."""
    return _note_probe(write_ns, nbytes)
cdef enum:  # the values of cosfast._partwriter_common.recycle_mode
    _RECYCLE_NEVER = 0
    _RECYCLE_WHEN_SLOW = 1
    _RECYCLE_ALWAYS = 2
# A closed recycling file's pages are under writeback for a while, and only clean pages can be
# dropped: a duplicate of its descriptor waits in this ring, and when _ring_capacity files later
# (RECYCLE_RING, fewer under a low descriptor limit: _partwriter_common) it leaves the ring (or at
# release_recycled()) its pages are dropped. Small objects of a batch thus hand their pages on to
# the objects that follow. A file that recycled all along (recycle=True) is waited for first, so
# none of its pages stays cached: its writeback started every RECYCLE_STEP bytes, and only the
# last few are left. A "when-slow" file may have written much without recycling (its budget ran
# out), and waiting for all that to reach the disk could take seconds: only its clean pages are
# dropped. GIL-guarded; a forked child forgets its parent's entries (closing its copies only).
cdef enum:
    _RECYCLE_RING_MAX = 128
if RECYCLE_RING > _RECYCLE_RING_MAX:
    raise ImportError(f"RECYCLE_RING {RECYCLE_RING} exceeds the compiled ring ({_RECYCLE_RING_MAX})")
cdef int _ring_fds[_RECYCLE_RING_MAX]
cdef bint _ring_wait[_RECYCLE_RING_MAX]
cdef int _ring_count = 0
cdef int _ring_capacity = 0
cdef int _ring_pid = 0


cdef void _ring_forget_inherited() noexcept:
    global _ring_count, _ring_pid, _ring_capacity
    cdef int i, pid = getpid()
    if _ring_pid != pid:
        for i in range(_ring_count):
            cosfast_pw_close(_ring_fds[i])
        _ring_count = 0
        _ring_capacity = ring_capacity()
        _ring_pid = pid


cdef void _ring_drop(int fd, bint wait) noexcept nogil:
    if wait:
        cosfast_pw_drop_all(fd)
    else:
        cosfast_pw_drop_clean(fd)
    cosfast_pw_close(fd)


cdef void _ring_push(int fd, bint wait) noexcept:
    """Takes ownership of ``fd`` (``wait``: the file recycled all along); drops the pages of (and
    closes) the oldest entry when full."""
    global _ring_count
    cdef int oldest, i
    cdef bint oldest_waits
    _ring_forget_inherited()
    if _ring_count >= _ring_capacity:
        oldest, oldest_waits = _ring_fds[0], _ring_wait[0]
        for i in range(1, _ring_count):
            _ring_fds[i - 1] = _ring_fds[i]
            _ring_wait[i - 1] = _ring_wait[i]
        _ring_count -= 1
        with nogil:
            _ring_drop(oldest, oldest_waits)  # a ring's worth of files ago: as a rule this does not wait
    _ring_fds[_ring_count] = fd
    _ring_wait[_ring_count] = wait
    _ring_count += 1


def release_recycled():
    """Drops the pages of every closed recycling file still in the ring and closes their
    descriptors (call at the end of a download). Files that recycled all along (recycle=True)
    are waited for first, so none of their pages stays cached (the wait is for the last few MiB
    written); "when-slow" files lose only their clean pages."""
    global _ring_count
    cdef int i
    _ring_forget_inherited()
    for i in range(_ring_count):
        with nogil:
            _ring_drop(_ring_fds[i], _ring_wait[i])
    _ring_count = 0


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
    never reused under a running pwrite; later writes fail with EBADF.

    recycle=True: the page cache does not keep the file's pages (see RECYCLE_STEP): the sinks'
    buffered writes start writeback and drop written-back pages as they go (and do not
    prefetch), and close() starts writeback of the rest and leaves a duplicate descriptor in a
    ring that drops those pages once they are clean. recycle="when-slow": the same, but only
    while the page cache is slow (see RECYCLE_BUDGET)."""

    cdef readonly str path
    cdef readonly object size
    cdef int _fd
    cdef bint _closed
    cdef Py_ssize_t _users  # system calls running on _fd with the GIL released
    # Serializes the sinks' pwrites into this file (see cosfast_pw_write).
    cdef pthread_mutex_t _write_lock
    # The O_DIRECT descriptor of direct stage writes (see PartSink): opened at the first one;
    # _DIRECT_UNTRIED before, _DIRECT_UNAVAILABLE where the file system has no O_DIRECT.
    cdef int _direct_fd
    cdef readonly object recycle
    cdef int _recycle_mode
    cdef uint64_t _unrecycled  # bytes written since the last recycling step (GIL-guarded)

    def __cinit__(self):
        self._fd = -1
        self._direct_fd = _DIRECT_UNTRIED
        self._closed = True
        pthread_mutex_init(&self._write_lock, NULL)

    def __init__(self, path, size, *, bint preallocate=True, bint create=True, int fd=-1, recycle=False):
        if self._fd >= 0:
            raise RuntimeError("TempFile is already open")
        self._recycle_mode = recycle_mode(recycle)
        self.recycle = recycle
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
        self._close_fds()
        pthread_mutex_destroy(&self._write_lock)

    cdef int _close_fds(self) except? -1:
        """Closes the descriptors (the direct one quietly: it only ever wrote what the sinks
        already waited for); returns close's result for the main one."""
        cdef int rc = 0
        if self._direct_fd >= 0:
            cosfast_pw_close(self._direct_fd)
            self._direct_fd = _DIRECT_UNAVAILABLE
        if self._fd >= 0:
            rc = cosfast_pw_close(self._fd)
            self._fd = -1
        return rc

    cdef int _direct(self):
        """The O_DIRECT descriptor, opened on first use; -1 if this file cannot have one. Call
        only between _acquire and _release, so that close() cannot run under it."""
        if self._direct_fd == _DIRECT_UNTRIED:
            self._direct_fd = cosfast_dw_open(self._fd)
            if self._direct_fd < 0:
                self._direct_fd = _DIRECT_UNAVAILABLE
        return self._direct_fd

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
        if self._closed and self._users == 0:
            self._close_fds()
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
        cdef int rc
        if self._closed:
            return
        self._closed = True
        if self._users:
            return  # the last running write closes it
        if self._recycling():
            self._hand_pages_on()
        rc = self._close_fds()
        if rc < 0:
            raise os_error(-rc, self.path)

    cdef void _hand_pages_on(self) noexcept:
        """Starts writeback of what is still dirty and leaves a duplicate descriptor in the ring,
        which drops the pages once they are clean."""
        cdef int fd = self._fd, keep
        with nogil:
            cosfast_pw_writeback(fd)
            keep = cosfast_pw_dup(fd)
        if keep >= 0:
            _ring_push(keep, self._recycle_mode == _RECYCLE_ALWAYS)

    cdef bint _recycling(self) noexcept:
        return self._recycle_mode == _RECYCLE_ALWAYS or (
            self._recycle_mode == _RECYCLE_WHEN_SLOW and _recycle_budget > 0)

    cdef bint _probes(self, size_t n) noexcept:
        """Whether a write of ``n`` bytes should be timed to renew the recycling budget."""
        return self._recycle_mode == _RECYCLE_WHEN_SLOW and _recycle_budget == 0 and n >= _PROBE_MIN

    cdef void _note_written(self, int fd, size_t n, uint64_t write_ns, bint probed) noexcept:
        """After a buffered write of ``n`` bytes (timed if ``probed``), with the fd acquired: a
        recycling step when one is due."""
        global _recycle_budget
        cdef uint64_t used
        if probed:
            _note_probe(write_ns, n)
        if not n or not self._recycling():
            return
        if self._recycle_mode == _RECYCLE_WHEN_SLOW:
            used = n if n < _recycle_budget else _recycle_budget
            _recycle_budget -= used
        self._unrecycled += n
        if self._unrecycled >= RECYCLE_STEP_C:
            self._unrecycled = 0
            with nogil:
                cosfast_pw_recycle_step(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return f"TempFile(path={self.path!r}, size={self.size}, closed={self._closed})"


# Staging buffers are recycled, never freed: on a VM, first-touch pages are the expensive part of
# a write, and a download creates a sink per part. The pool is bounded by the sinks alive at once
# (and the direct writes in flight). The buffers are aligned for O_DIRECT. All of this runs with
# the GIL held, which guards the pool.
cdef enum:
    _STAGE_POOL_MAX = 64
cdef unsigned char *_pool_buf[_STAGE_POOL_MAX]
cdef size_t _pool_len[_STAGE_POOL_MAX]
cdef int _pool_count = 0


cdef unsigned char *_take_stage(size_t size) except NULL:
    global _pool_count
    cdef int i
    cdef unsigned char *buf
    for i in range(_pool_count - 1, -1, -1):
        if _pool_len[i] == size:
            buf = _pool_buf[i]
            _pool_count -= 1
            _pool_buf[i] = _pool_buf[_pool_count]
            _pool_len[i] = _pool_len[_pool_count]
            return buf
    buf = cosfast_dw_alloc(size)
    if buf == NULL:
        raise MemoryError(f"cannot allocate a {size}-byte stage")
    return buf


cdef void _give_stage(unsigned char *buf, size_t size) noexcept:
    global _pool_count
    if _pool_count < _STAGE_POOL_MAX:
        _pool_buf[_pool_count] = buf
        _pool_len[_pool_count] = size
        _pool_count += 1
    else:
        free(buf)


# Prefetch (PartSink(prefetch=True)). On a VM whose host takes back the memory the guest frees,
# buffered writes that need fresh page-cache pages fault them in one 4 KiB page at a time and run
# at ~1 GB/s here, while readahead allocates large folios, and the writes that follow it run at
# page-cache speed: measured on this VM, 1 GiB in 1 MiB pwrites went from 0.9-1.1 GB/s (1.0 CPU
# s) to 1.7-1.8 GB/s (0.6 CPU s). Where pages are recycled the same readahead is pure extra work
# (6 GB/s without it). So a sink times its plain writes, and only a slow one (fewer than
# _PROBE_SLOW_NS per MiB) makes it prefetch the next _PREFETCH_WINDOW bytes of its part. A slow
# probe also marks the page cache slow (for every file: it is the machine's state) for its next
# _SLOW_CREDITS buffered writes: a sink then prefetches a new window *before* writing into it
# (so not even its first stage lands in small pages), and only then probes again, in case the
# page cache has become fast. A sink that writes direct (above) prefetches only a stage it is
# about to write buffered, if its part has more (raw writes of 1 GiB through 8 AIO slots and
# the page cache, here: 1.10-1.36 GB/s at 0.74-0.95 CPU s without, 1.31-1.44 GB/s at 0.71-0.77 with).
cdef uint64_t _PREFETCH_WINDOW = 32 * 1024 * 1024
cdef int _SLOW_CREDITS = 8
cdef int _slow_credits = 0  # buffered writes still to treat as slow (GIL-guarded)


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
    time.

    ``direct=True`` (with a stage): full stages at aligned offsets may go to the file with
    O_DIRECT through native AIO while the sink goes on taking chunks (see "Direct stage writes"
    above); the rest, and everything on a file system without O_DIRECT, goes through the page
    cache. The call that completes the part, and
    ``flush()``, wait for those writes, so a part reported complete is in the file; with
    ``finish_later=True`` the completing call does not wait: ``writing`` then says whether
    writes are still in flight, and ``poll()`` (without waiting) or ``flush()`` (waiting)
    collects them. A direct write that fails stores its OSError like a buffered one, but
    ``written``/``crc`` then count bytes that did not reach the file: the part has to be fetched
    again from its start. ``direct_writes`` counts the stages written direct."""

    cdef readonly TempFile tempfile
    cdef readonly object offset
    cdef readonly object length
    cdef uint64_t _offset, _length, _flushed, _crc
    cdef readonly object error
    cdef bint _busy
    cdef readonly Py_ssize_t stage_size
    cdef unsigned char *_stage
    cdef Py_ssize_t _staged
    cdef readonly bint prefetch
    cdef uint64_t _prefetched_until  # absolute offset: writes below it were prefetched
    cdef readonly bint direct  # still allowed to write direct (cleared where it cannot)
    cdef readonly bint direct_auto  # direct="auto": its stages go direct only while the disk keeps up
    cdef readonly Py_ssize_t direct_writes
    cdef uint64_t _aio  # the native AIO context, 0 until the first direct write
    cdef unsigned char *_in_flight[_DW_DEPTH]  # the buffer of each slot's write, or NULL
    cdef size_t _in_flight_len[_DW_DEPTH]
    cdef uint64_t _in_flight_offset[_DW_DEPTH]
    cdef int _in_flight_count
    cdef readonly bint finish_later

    def __init__(self, TempFile tempfile not None, offset, length, *, crc=0, written=0,
                 Py_ssize_t stage_size=0, bint prefetch=False, direct=False, bint finish_later=False):
        check_part(tempfile, offset, length, crc, written)
        check_direct(direct)
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
        self._staged = 0
        # Prefetched pages would be fresh ones, and a recycling step would drop them unwritten.
        self.prefetch = prefetch and tempfile._recycle_mode == _RECYCLE_NEVER
        self._prefetched_until = 0
        self.direct = direct is not False and stage_size > 0 and stage_size % COSFAST_DW_ALIGN == 0
        self.direct_auto = direct == "auto"
        self.finish_later = finish_later

    def __dealloc__(self):
        cdef int i
        global _dw_in_flight
        if self._aio:
            # An abandoned part: its writes in flight must end before their buffers and the
            # context are reused. Whether they succeeded no longer matters.
            self._release_aio()
        for i in range(_DW_DEPTH):
            if self._in_flight[i] != NULL:
                _give_stage(self._in_flight[i], <size_t>self.stage_size)
                _dw_in_flight -= 1
        if self._stage != NULL:
            _give_stage(self._stage, <size_t>self.stage_size)

    cdef void _release_aio(self) noexcept:
        """Waits for this sink's direct writes, then gives its context back (or, if the kernel
        cannot say they ended, destroys it, which waits for them)."""
        cdef uint64_t tags[_DW_DEPTH]
        cdef int64_t results[_DW_DEPTH]
        cdef int got, i, pending = self._in_flight_count
        cdef uint64_t ctx = self._aio
        self._aio = 0
        with nogil:
            while pending > 0:
                got = cosfast_dw_reap(ctx, pending, _DW_DEPTH, tags, results)
                if got < 0:
                    break
                pending -= got
        if pending > 0:
            with nogil:
                cosfast_dw_destroy(ctx)
            return
        _give_aio(ctx)

    @property
    def written(self):
        """Bytes of the part taken so far (continues from the ``written`` given), staged ones
        included."""
        return self._flushed + self._staged

    @property
    def crc(self):
        """CRC-64/XZ of the part's first ``written`` bytes."""
        if self._staged:
            return cosfast_crc64_update(self._crc, self._stage, <size_t>self._staged)
        return self._crc

    @property
    def writing(self):
        """True while direct writes of this sink are in flight (see ``finish_later``)."""
        return self._in_flight_count > 0

    def poll(self):
        """Collects the direct writes that have ended, without waiting; True once none is in
        flight (a failure is stored in ``error``)."""
        if self._in_flight_count:
            self._wait_direct(0)
        if not self._in_flight_count and self._aio and self._flushed == self._length:
            self._release_aio()
        return not self._in_flight_count

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
                if self._stage == NULL:
                    self._stage = _take_stage(<size_t>self.stage_size)
                room = <size_t>(self.stage_size - self._staged)
                if room > n:
                    room = n
                memcpy(self._stage + self._staged, src, room)
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
        """Writes the staged bytes now and waits for the direct writes in flight; raises the
        stored error if that (or an earlier call) failed."""
        if self.error is None and self._flush_stage() == 0 and self._wait_direct(self._in_flight_count) == 0:
            self.poll()
        self.raise_if_failed()

    cdef int _flush_stage(self) except -2:
        """Writes the staged bytes and recycles the stage; once the part is complete, waits for
        its direct writes. 0, or -1 with the error stored."""
        cdef Py_ssize_t staged = self._staged
        cdef int rc = 0
        if staged:
            self._staged = 0
            rc = self._write_direct(<size_t>staged) if self.direct else 0
            if rc == 0:
                rc = self._write(self._stage, <size_t>staged)
            elif rc > 0:
                rc = 0  # the stage is in flight; the next chunk takes a fresh one
        if rc == 0 and self._flushed == self._length and not self.finish_later:
            rc = self._wait_direct(self._in_flight_count)
            if rc == 0 and self._aio:
                self._release_aio()
        if self._stage != NULL and (rc != 0 or self._flushed == self._length):
            _give_stage(self._stage, <size_t>self.stage_size)
            self._stage = NULL
        return rc

    cdef int _write_direct(self, size_t n) except -2:
        """Submits the staged ``n`` bytes as a direct write if they may go: 1 if they went (the
        stage is then in flight and no longer the sink's; an unaligned tail of the part's last
        bytes was written buffered), 0 if they must be written buffered, -1 with the error
        stored when a direct write failed."""
        cdef uint64_t start = self._offset + self._flushed
        cdef uint64_t part_end = self._offset + self._length
        cdef size_t head = n
        cdef int rc
        if start % COSFAST_DW_ALIGN or <uintptr_t>self._stage % COSFAST_DW_ALIGN:
            return 0
        if self.finish_later and start + n == part_end:
            head = n - n % COSFAST_DW_ALIGN  # the part's last bytes: nobody waits for them here
            if head < _DW_MIN_WRITE:
                return 0
        elif n != <size_t>self.stage_size or (not self.finish_later and part_end - start - n < _DW_TAIL_STAGES * n):
            return 0
        if self.direct_auto and _auto_direct_paused():
            return 0
        rc = self._submit_direct(n, head, start)
        # Only full stages of a sink that can write direct tell how the disk keeps up (a file
        # system without O_DIRECT clears ``direct`` and says nothing about it).
        if self.direct_auto and self.direct and rc >= 0 and n == <size_t>self.stage_size:
            _auto_direct_note(rc == 1)
        return rc

    cdef int _submit_direct(self, size_t n, size_t head, uint64_t start) except -2:
        """_write_direct's submission of the stage's first ``head`` of ``n`` bytes, at ``start``:
        the same results."""
        global _dw_in_flight
        cdef uint64_t crc = self._crc
        cdef unsigned char *stage = self._stage
        cdef TempFile tempfile = self.tempfile
        cdef int fd, direct_fd, slot, rc
        if self._in_flight_count and self._wait_direct(0) != 0:
            return -1
        if self._in_flight_count == _DW_DEPTH or _dw_in_flight >= _DW_MAX_IN_FLIGHT:
            return 0
        fd = tempfile._acquire()
        if fd < 0:
            return 0  # closed: the buffered write stores EBADF
        direct_fd = tempfile._direct()
        if direct_fd >= 0 and not self._aio:
            self._aio = _take_aio()
        if direct_fd < 0 or not self._aio:
            tempfile._release()
            self.direct = False
            return 0
        slot = 0
        while self._in_flight[slot] != NULL:
            slot += 1
        self._busy = True
        with nogil:
            crc = cosfast_crc64_update(crc, stage, head)
            rc = cosfast_dw_submit(self._aio, direct_fd, stage, head, start, <uint64_t>slot)
        self._busy = False
        tempfile._release()
        if rc == -EAGAIN:
            return 0  # it would have waited (a buffered write holds the inode): buffered it is
        if rc < 0:
            # Not taken (the file system refused it, or the kernel is out of AIO slots): this
            # sink writes through the page cache from now on, starting with this stage.
            self.direct = False
            return 0
        self._in_flight[slot] = stage
        self._in_flight_len[slot] = head
        self._in_flight_offset[slot] = start
        self._in_flight_count += 1
        _dw_in_flight += 1
        self._stage = NULL
        self._crc = crc
        self._flushed += head
        self.direct_writes += 1
        if head < n:
            return 1 if self._write(stage + head, n - head) == 0 else -1
        return 1

    cdef int _wait_direct(self, int at_least) except -2:
        """Collects finished direct writes, waiting until ``at_least`` have finished, and
        recycles their buffers; 0, or -1 with the first failure stored."""
        global _dw_in_flight
        cdef uint64_t tags[_DW_DEPTH]
        cdef int64_t results[_DW_DEPTH]
        cdef int got, i, slot
        cdef object failure = None
        while self._in_flight_count:
            with nogil:
                got = cosfast_dw_reap(self._aio, at_least, _DW_DEPTH, tags, results)
            if got < 0:
                if self.error is None:
                    self.error = os_error(-got, self.tempfile.path)
                return -1
            for i in range(got):
                slot = <int>tags[i]
                if results[i] == -EAGAIN:
                    # The kernel would have had to wait for it after all: write it buffered.
                    results[i] = self._rewrite_buffered(slot)
                    self.direct_writes -= 1
                if failure is None and results[i] != <int64_t>self._in_flight_len[slot]:
                    failure = os_error(<int>-results[i] if results[i] < 0 else EIO, self.tempfile.path)
                _give_stage(self._in_flight[slot], <size_t>self.stage_size)
                self._in_flight[slot] = NULL
                self._in_flight_count -= 1
                _dw_in_flight -= 1
            at_least -= got
            if at_least <= 0:
                break
        if failure is not None:
            if self.error is None:
                self.error = failure
            return -1
        return 0

    cdef int64_t _rewrite_buffered(self, int slot) except? -1:
        """Writes the stage of ``slot`` (whose CRC is already counted) through the page cache;
        the bytes written, or -errno."""
        cdef uint64_t unused_crc = 0
        cdef size_t done = 0
        cdef int rc
        cdef TempFile tempfile = self.tempfile
        cdef int fd = tempfile._acquire()
        if fd < 0:
            return -EBADF
        with nogil:
            rc = cosfast_pw_write(fd, &tempfile._write_lock, self._in_flight[slot], self._in_flight_len[slot],
                                  self._in_flight_offset[slot], &unused_crc, &done)
        tempfile._note_written(fd, done, 0, False)
        tempfile._release()
        return rc if rc < 0 else <int64_t>done

    cdef int _write(self, const unsigned char *buf, size_t n) except -2:
        """pwrite + CRC of n bytes at offset+flushed, GIL released; 0, or -1 with the error
        stored (``_flushed``/``_crc`` then cover exactly what reached the file)."""
        global _slow_credits
        cdef uint64_t crc, write_ns = 0, ahead = 0
        cdef uint64_t start = self._offset + self._flushed
        cdef uint64_t part_end = self._offset + self._length
        cdef uint64_t fetch_to = start  # prefetch [start, fetch_to) before writing
        cdef size_t done = 0
        cdef int fd, rc
        cdef bint probe = False, recycle_probe
        cdef TempFile tempfile = self.tempfile
        fd = tempfile._acquire()
        if fd < 0:
            self.error = os_error(EBADF, self.tempfile.path)
            return -1
        self._busy = True
        crc = self._crc
        if self.direct or (self.prefetch and start >= self._prefetched_until):
            if _slow_credits > 0:
                _slow_credits -= 1
                # A sink that writes direct prefetches only the stage it writes buffered (its
                # other stages may go direct, and a direct write into prefetched pages would
                # only have the kernel drop them again), and only if its part has more stages.
                if not self.direct:
                    fetch_to = start + _PREFETCH_WINDOW
                elif self.prefetch and self._length > <uint64_t>self.stage_size:
                    fetch_to = start + n
                if fetch_to > part_end:
                    fetch_to = part_end
            else:
                probe = True
        recycle_probe = tempfile._probes(n)
        with nogil:
            if fetch_to > start:
                cosfast_pw_prefetch(fd, start, fetch_to - start)
            if not (probe or recycle_probe):
                rc = cosfast_pw_write(fd, &tempfile._write_lock, buf, n, start, &crc, &done)
            else:
                rc = cosfast_pw_write_timed(fd, &tempfile._write_lock, buf, n, start, &crc, &done, &write_ns)
        tempfile._note_written(fd, done, write_ns, recycle_probe and rc == 0)
        if fetch_to > start and not self.direct:
            self._prefetched_until = fetch_to
        elif probe and rc == 0 and n >= _PROBE_MIN and write_ns * _MIB > _PROBE_SLOW_NS * n:
            _slow_credits = _SLOW_CREDITS
            ahead = start + n + _PREFETCH_WINDOW
            if ahead > part_end:
                ahead = part_end
            if ahead > start + n and not self.direct:
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


# The write callback in C (src_c/curlwrite.h says why). A chunk that only adds to a sink's stage
# is copied there without the GIL; every other one (the response's first, the one that fills a
# stage or ends the part, any after an error) goes to the Python callback with the GIL, as
# before. _Feed holds the callback's view of the sink: pointers to its fields, valid while the
# _CurlWriter (which holds the sink) lives. Only the thread driving the transfer calls it, and
# that is the thread that feeds the sink, so no other thread changes these fields meanwhile.
cdef struct _Feed:
    unsigned char **stage
    Py_ssize_t *staged
    uint64_t *flushed
    bint *busy
    uint64_t length
    size_t stage_size
    bint to_sink  # the body goes to the sink: a chunk reached it, and it stored no error since
    PyObject *writer  # the _CurlWriter this is part of (borrowed)


cdef size_t _write_chunk(char *ptr, size_t size, size_t nmemb, void *userdata) noexcept nogil:
    cdef _Feed *feed = <_Feed *>userdata
    cdef size_t n = size * nmemb
    cdef size_t staged = <size_t>feed.staged[0]
    # Strictly below the stage's size and the part's end: a chunk that fills the stage or ends
    # the part takes the slow route, which writes.
    if (feed.to_sink and feed.stage[0] != NULL and not feed.busy[0] and staged + n < feed.stage_size
            and feed.flushed[0] + staged + n < feed.length):
        memcpy(feed.stage[0] + staged, ptr, n)
        feed.staged[0] = <Py_ssize_t>(staged + n)
        return n
    with gil:
        return (<_CurlWriter>feed.writer)._call_slow(ptr, n)


cdef class _CurlWriter:
    """The C write callback's state for one transfer into ``sink``; ``slow`` is the Python write
    callback that gets every chunk the C one does not take (see bind_writer)."""

    cdef _Feed feed
    cdef PartSink sink
    cdef object slow

    def __cinit__(self, PartSink sink not None, slow):
        self.sink = sink
        self.slow = slow
        self.feed.stage = &sink._stage
        self.feed.staged = &sink._staged
        self.feed.flushed = &sink._flushed
        self.feed.busy = &sink._busy
        self.feed.length = sink._length
        self.feed.stage_size = <size_t>sink.stage_size
        self.feed.to_sink = False
        self.feed.writer = <PyObject *>self

    cdef size_t _call_slow(self, char *ptr, size_t n) noexcept:
        # As pycurl does with a callback's exception: reported as unraisable, and the transfer
        # aborted (this returns 0).
        cdef PartSink sink = self.sink
        cdef uint64_t before = sink._flushed + <uint64_t>sink._staged
        view = PyMemoryView_FromMemory(ptr, <Py_ssize_t>n, 0x100)  # PyBUF_READ
        try:
            result = self.slow(view)
        finally:
            view.release()  # libcurl reuses the buffer: nothing may read it later
        self.feed.to_sink = n > 0 and sink.error is None and sink._flushed + <uint64_t>sink._staged == before + n
        return n if result is None else result


# pycurl keeps the CURL pointer in its Curl object right after the attributes dict and the
# weak-reference list (src/pycurl.h: PyObject_HEAD, dict, weakreflist, handle), and does not
# export it. _handle_offset is where, in objects of exactly _handle_type (the first type seen,
# if it has the expected shape), and libcurl is asked to confirm every handle found there
# (cosfast_curl_bind_handle). 0: no C callback in this process (a pycurl of another shape, or
# its libcurl not found); the Python one is used.
cdef Py_ssize_t _handle_offset = -1
cdef object _handle_type = None


cdef Py_ssize_t _find_handle_offset(type curl_type):
    cdef PyTypeObject *kind = <PyTypeObject *>curl_type
    cdef Py_ssize_t pointer = sizeof(void *)
    cdef Py_ssize_t weakref_offset = curl_type.__weakrefoffset__
    if weakref_offset != <Py_ssize_t>sizeof(PyObject) + pointer or kind.tp_basicsize < weakref_offset + 2 * pointer:
        return 0
    if cosfast_curl_resolve(<const void *>kind.tp_dealloc) != 0:
        return 0
    return weakref_offset + pointer


def bind_writer(curl, sink, slow):
    """Makes ``slow`` (a pycurl write callback taking a memoryview) the WRITEFUNCTION of the
    pycurl handle ``curl`` for a transfer whose body goes to ``sink`` (a PartSink), with a C
    callback in front where this process can have one: chunks that only add to the sink's stage
    are copied there without the GIL or a Python call, and ``slow`` sees the others, so it must
    pass a chunk to ``sink`` exactly when the body is meant for it. Call before the transfer
    starts; returns what must stay referenced until the transfer has ended and the handle has
    another WRITEFUNCTION (None where ``slow`` itself was set)."""
    global _handle_offset, _handle_type
    cdef void *handle = NULL
    cdef _CurlWriter writer
    if isinstance(sink, PartSink) and sink.stage_size > 0:
        if _handle_offset < 0:
            _handle_type = type(curl)
            _handle_offset = _find_handle_offset(_handle_type)
        if _handle_offset > 0 and type(curl) is _handle_type:
            handle = cosfast_curl_bind_handle(<void *const *>(<char *><PyObject *>curl + _handle_offset),
                                              <PyObject *>curl)
    if handle != NULL:
        writer = _CurlWriter(sink, slow)
        if cosfast_curl_set_writer(handle, _write_chunk, &writer.feed) == 0:
            return writer
    bind_python_writer(curl, slow)
    return None
