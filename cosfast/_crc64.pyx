# cython: language_level=3, boundscheck=False, wraparound=False, embedsignature=True
"""Compiled CRC-64/XZ: thin Cython layer over src_c/crc64_*.c. Private; use cosfast.crc64."""
from libc.stdint cimport uint64_t

cdef extern from "crc64.h":
    ctypedef uint64_t (*cosfast_crc64_fn)(uint64_t crc, const unsigned char *buf, size_t len) noexcept nogil
    uint64_t cosfast_crc64_update(uint64_t crc, const unsigned char *buf, size_t len) nogil
    uint64_t cosfast_crc64_combine(uint64_t crc_a, uint64_t crc_b, uint64_t len_b) nogil
    const char *cosfast_crc64_impl_name()
    int cosfast_crc64_impl_supported(const char *name)
    int cosfast_crc64_select(const char *name)
    cosfast_crc64_fn cosfast_crc64_kernel(const char *name)

# Below this many bytes, releasing and retaking the GIL costs more than the CRC itself.
DEF NOGIL_THRESHOLD = 65536

KERNELS = ("table", "clmul", "avx512")


cdef uint64_t _run(cosfast_crc64_fn fn, uint64_t crc, const unsigned char[::1] view) except? 0:
    cdef size_t n = view.shape[0]
    cdef const unsigned char *p
    if n == 0:
        return crc
    p = &view[0]
    if n >= NOGIL_THRESHOLD:
        with nogil:
            crc = fn(crc, p, n)
        return crc
    return fn(crc, p, n)


cdef const unsigned char[::1] _as_bytes_view(object data) except *:
    if isinstance(data, str):
        raise TypeError("crc64 takes a bytes-like object, not str")
    cdef memoryview mv = memoryview(data)
    if not mv.c_contiguous:
        raise BufferError("crc64 needs a contiguous buffer")
    if mv.itemsize != 1 or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


def crc64(data, unsigned long long crc=0):
    """CRC-64/XZ of a contiguous buffer, continuing from ``crc``."""
    return _run(cosfast_crc64_update, crc, _as_bytes_view(data))


def crc64_with_kernel(str name, data, unsigned long long crc=0):
    """CRC-64/XZ computed by one named kernel (for tests that compare kernels)."""
    cdef cosfast_crc64_fn fn = cosfast_crc64_kernel(name.encode())
    if fn == NULL:
        raise ValueError(f"CRC-64 kernel {name!r} is not available on this CPU/build")
    return _run(fn, crc, _as_bytes_view(data))


def crc64_combine(unsigned long long crc_a, unsigned long long crc_b, unsigned long long len_b):
    """crc64(a + b) from crc64(a), crc64(b) and len(b)."""
    return cosfast_crc64_combine(crc_a, crc_b, len_b)


def kernel_name():
    """Name of the kernel in use: 'table', 'clmul' or 'avx512'."""
    return cosfast_crc64_impl_name().decode()


def kernel_supported(str name):
    """True if this CPU and build can run the named kernel."""
    cdef int ok = cosfast_crc64_impl_supported(name.encode())
    if ok < 0:
        raise ValueError(f"unknown CRC-64 kernel {name!r}; known: {', '.join(KERNELS)}")
    return ok == 1


def select_kernel(str name):
    """Forces a kernel by name ('' picks the best the CPU supports)."""
    cdef int rc = cosfast_crc64_select(name.encode())
    if rc == -1:
        raise ValueError(f"unknown CRC-64 kernel {name!r}; known: {', '.join(KERNELS)}")
    if rc == -2:
        raise RuntimeError(f"CRC-64 kernel {name!r} is not supported by this CPU or build")
