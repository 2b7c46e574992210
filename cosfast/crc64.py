"""CRC-64/XZ, the checksum COS sends as ``x-cos-hash-crc64ecma`` (a decimal string).

    >>> crc64(b"123456789") == 0x995DC9BBDF1939FA
    True

The compiled kernels (avx512, vpclmul, clmul, table; best first) are picked once at import by
CPU support; ``COSFAST_CRC64_IMPL=avx512|vpclmul|clmul|table`` forces one (an unsupported or
unknown choice raises RuntimeError at import).
"""
from __future__ import annotations

import mmap
import os
import threading
from typing import TYPE_CHECKING, Union

from cosfast._backend import load

_impl, backend = load("_crc64")

#: Any contiguous buffer works (buffer protocol); these are the usual ones.
Buffer = Union[bytes, bytearray, memoryview, mmap.mmap]

_forced = os.environ.get("COSFAST_CRC64_IMPL", "")
if _forced:
    try:
        _impl.select_kernel(_forced)
    except (ValueError, RuntimeError) as exc:
        raise RuntimeError(f"COSFAST_CRC64_IMPL={_forced!r}: {exc}") from None

#: Name of the CRC-64 kernel in use: "avx512", "vpclmul", "clmul" or "table".
KERNEL: str = _impl.kernel_name()

#: All kernel names known to cosfast (not all run on every CPU).
KERNELS: tuple[str, ...] = tuple(_impl.KERNELS)

# Chunk size for crc64_file: large enough to amortise the call, small enough to stay in cache.
_FILE_CHUNK = 1 << 20


if TYPE_CHECKING:

    def crc64(data: Buffer, crc: int = 0) -> int:
        """CRC-64/XZ of any contiguous buffer, continuing from a previous value ``crc``.

        TypeError for str and non-buffers, BufferError for a non-contiguous buffer,
        OverflowError for a ``crc`` outside 0..2**64-1."""

    def crc64_combine(crc_a: int, crc_b: int, len_b: int) -> int:
        """CRC of ``a + b`` from ``crc64(a)``, ``crc64(b)`` and ``len(b)``, without the data."""

else:
    # The hot entry points are the backend's own functions: a Python wrapper would add ~100 ns
    # a call (as much as a whole combine). Their docstrings live in the backend.
    crc64 = _impl.crc64
    crc64_combine = _impl.crc64_combine


def kernel_supported(name: str) -> bool:
    """True if this CPU and build can run the named kernel (ValueError for unknown names)."""
    return _impl.kernel_supported(name)


def crc64_with_kernel(name: str, data: Buffer, crc: int = 0) -> int:
    """CRC computed by one named kernel; for tests and benchmarks comparing kernels.

    ValueError for an unknown name, RuntimeError for a kernel this CPU or build cannot run."""
    return _impl.crc64_with_kernel(name, data, crc)


def crc64_file(path: str | os.PathLike, *, offset: int = 0, length: int | None = None) -> int:
    """CRC-64/XZ of a file (or of ``length`` bytes from ``offset``), read in bounded chunks.

    EOFError if the file ends before ``offset + length``."""
    if offset < 0 or (length is not None and length < 0):
        raise ValueError(f"offset and length must be >= 0, got offset={offset}, length={length}")
    crc = 0
    buf = bytearray(_FILE_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        remaining = length
        while remaining is None or remaining > 0:
            want = _FILE_CHUNK if remaining is None else min(_FILE_CHUNK, remaining)
            n = f.readinto(view[:want])
            if not n:
                break
            crc = _impl.crc64(view[:n], crc)
            if remaining is not None:
                remaining -= n
        if remaining:
            raise EOFError(f"{os.fspath(path)!r} ended {remaining} bytes before the range did")
    return crc


def to_cos_string(crc: int) -> str:
    """The decimal form COS uses in ``x-cos-hash-crc64ecma``."""
    return str(crc)


class Crc64:
    """Streaming CRC-64/XZ. Thread-safe: one lock guards the running value."""

    __slots__ = ("_crc", "_length", "_lock")

    def __init__(self, data: Buffer = b"", *, crc: int = 0, length: int = 0) -> None:
        self._crc = crc
        self._length = length
        self._lock = threading.Lock()
        if data:
            self.update(data)

    def update(self, data: Buffer) -> Crc64:
        with self._lock:
            self._crc, n = _impl.crc64_counted(data, self._crc)
            self._length += n
        return self

    def copy(self) -> Crc64:
        with self._lock:
            return Crc64(crc=self._crc, length=self._length)

    @property
    def value(self) -> int:
        """The CRC so far, as an unsigned 64-bit int."""
        return self._crc

    @property
    def length(self) -> int:
        """Bytes fed so far."""
        return self._length

    def cos_string(self) -> str:
        """The CRC so far as COS's decimal ``x-cos-hash-crc64ecma`` string."""
        return str(self._crc)

    def __int__(self) -> int:
        return self._crc

    def __repr__(self) -> str:
        return f"Crc64(value={self._crc:#018x}, length={self._length})"
