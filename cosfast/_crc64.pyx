# cython: language_level=3, boundscheck=False, wraparound=False, embedsignature=True
"""Compiled CRC-64/XZ: thin Cython layer over src_c/crc64_*.c. Private; use cosfast.crc64.

Buffers are taken through the buffer protocol directly (PyBUF_SIMPLE: contiguous bytes), which
costs far less per call than a typed memoryview; lengths stay 64-bit (Py_ssize_t -> size_t)."""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport uint64_t

cdef extern from "crc64.h":
    ctypedef uint64_t (*cosfast_crc64_fn)(uint64_t crc, const unsigned char *buf, size_t len) noexcept nogil
    uint64_t cosfast_crc64_update(uint64_t crc, const unsigned char *buf, size_t len) nogil
    uint64_t cosfast_crc64_combine(uint64_t crc_a, uint64_t crc_b, uint64_t len_b) nogil
    uint64_t cosfast_crc64_combine_portable(uint64_t crc_a, uint64_t crc_b, uint64_t len_b) nogil
    const char *cosfast_crc64_impl_name()
    const char *cosfast_crc64_impl_needs(const char *name)
    int cosfast_crc64_impl_supported(const char *name)
    int cosfast_crc64_select(const char *name)
    cosfast_crc64_fn cosfast_crc64_kernel(const char *name)

# Below this many bytes, releasing and retaking the GIL costs more than the CRC itself.
DEF NOGIL_THRESHOLD = 65536

#: Kernel names, best first.
KERNELS = ("avx512", "vpclmul", "clmul", "table")

# Resolve the dispatch at import: every later call is one indirect call.
cosfast_crc64_select(NULL)


cdef int _get_bytes(object data, Py_buffer *view) except -1:
    if isinstance(data, str):
        raise TypeError("crc64 takes a bytes-like object (bytes, bytearray, memoryview, mmap), not str")
    try:
        PyObject_GetBuffer(data, view, PyBUF_SIMPLE)
    except BufferError as exc:
        raise BufferError(f"crc64 needs a C-contiguous buffer ({exc})") from None
    return 0


cdef uint64_t _run(cosfast_crc64_fn fn, uint64_t crc, Py_buffer *view) noexcept:
    cdef const unsigned char *p = <const unsigned char *>view.buf
    cdef size_t n = <size_t>view.len
    if n >= NOGIL_THRESHOLD:
        with nogil:
            crc = fn(crc, p, n)
    elif n:
        crc = fn(crc, p, n)
    return crc


cdef uint64_t _crc_of(cosfast_crc64_fn fn, object data, uint64_t crc, Py_ssize_t *nbytes) except? 0:
    cdef Py_buffer view
    _get_bytes(data, &view)
    crc = _run(fn, crc, &view)
    if nbytes != NULL:
        nbytes[0] = view.len
    PyBuffer_Release(&view)
    return crc


cdef cosfast_crc64_fn _kernel(str name) except NULL:
    cdef bytes key = name.encode()
    cdef cosfast_crc64_fn fn = cosfast_crc64_kernel(key)
    if fn == NULL:
        _raise_unusable(name, key)
    return fn


cdef _raise_unusable(str name, bytes key):
    if cosfast_crc64_impl_supported(key) < 0:
        raise ValueError(f"unknown CRC-64 kernel {name!r}; known: {', '.join(KERNELS)}")
    raise RuntimeError(
        f"CRC-64 kernel {name!r} is not supported here: it needs "
        f"{cosfast_crc64_impl_needs(key).decode()}"
    )


def crc64(data, unsigned long long crc=0):
    """CRC-64/XZ of a contiguous buffer, continuing from ``crc``."""
    return _crc_of(cosfast_crc64_update, data, crc, NULL)


def crc64_counted(data, unsigned long long crc=0):
    """(CRC-64/XZ continuing from ``crc``, number of bytes): one buffer lookup for both."""
    cdef Py_ssize_t n = 0
    cdef uint64_t value = _crc_of(cosfast_crc64_update, data, crc, &n)
    return value, n


def crc64_with_kernel(str name, data, unsigned long long crc=0):
    """CRC-64/XZ computed by one named kernel (for tests and benchmarks that compare kernels)."""
    return _crc_of(_kernel(name), data, crc, NULL)


def crc64_combine(unsigned long long crc_a, unsigned long long crc_b, unsigned long long len_b):
    """crc64(a + b) from crc64(a), crc64(b) and len(b)."""
    return cosfast_crc64_combine(crc_a, crc_b, len_b)


def crc64_combine_portable(unsigned long long crc_a, unsigned long long crc_b, unsigned long long len_b):
    """crc64_combine without PCLMULQDQ (the path CPUs without it take)."""
    return cosfast_crc64_combine_portable(crc_a, crc_b, len_b)


def kernel_name():
    """Name of the kernel in use."""
    return cosfast_crc64_impl_name().decode()


def kernel_supported(str name):
    """True if this CPU and build can run the named kernel; ValueError for unknown names."""
    cdef int ok = cosfast_crc64_impl_supported(name.encode())
    if ok < 0:
        raise ValueError(f"unknown CRC-64 kernel {name!r}; known: {', '.join(KERNELS)}")
    return ok == 1


def select_kernel(str name):
    """Forces a kernel by name ('' picks the best the CPU supports)."""
    cdef bytes key = name.encode()
    if cosfast_crc64_select(key) != 0:
        _raise_unusable(name, key)
