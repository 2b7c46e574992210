"""Pure-Python CRC-64/XZ: the test oracle and the COSFAST_NO_EXTENSIONS=1 fallback.

Same interface as the compiled cosfast._crc64. Slow (a byte-at-a-time table loop), never used
on a hot path when the extension is built."""
from __future__ import annotations

POLY_REFLECTED = 0xC96C5795D7870F42
MASK64 = 0xFFFFFFFFFFFFFFFF
KERNELS = ("avx512", "vpclmul", "clmul", "table")


def _make_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ POLY_REFLECTED if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_TABLE = _make_table()


def _as_bytes(data) -> memoryview:
    if isinstance(data, str):
        raise TypeError("crc64 takes a bytes-like object (bytes, bytearray, memoryview, mmap), not str")
    mv = memoryview(data)
    if not mv.c_contiguous:
        raise BufferError("crc64 needs a C-contiguous buffer")
    return mv.cast("B") if (mv.itemsize != 1 or mv.ndim != 1 or mv.format != "B") else mv


def crc64(data, crc: int = 0) -> int:
    """CRC-64/XZ of a contiguous buffer, continuing from ``crc``."""
    if not 0 <= crc <= MASK64:
        raise OverflowError(f"crc must be an unsigned 64-bit int, got {crc}")
    table = _TABLE
    c = crc ^ MASK64
    for b in _as_bytes(data):
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ MASK64


def crc64_counted(data, crc: int = 0) -> tuple[int, int]:
    """(CRC-64/XZ continuing from ``crc``, number of bytes)."""
    mv = _as_bytes(data)
    return crc64(mv, crc), mv.nbytes


def crc64_with_kernel(name: str, data, crc: int = 0) -> int:
    """Only the table kernel exists here; the others are an error, as on a CPU without them."""
    if not kernel_supported(name):
        raise _unsupported(name)
    return crc64(data, crc)


def _mulmod(a: int, b: int) -> int:
    """a * b mod P in the reflected representation (bit 63 is x^0)."""
    prod = 0
    for _ in range(64):
        if a & 0x8000000000000000:
            prod ^= b
        a = (a << 1) & MASK64
        b = (b >> 1) ^ POLY_REFLECTED if b & 1 else b >> 1
    return prod


def crc64_combine(crc_a: int, crc_b: int, len_b: int) -> int:
    """crc64(a + b) from crc64(a), crc64(b) and len(b)."""
    for name, value in (("crc_a", crc_a), ("crc_b", crc_b), ("len_b", len_b)):
        if not 0 <= value <= MASK64:
            raise OverflowError(f"{name} must be an unsigned 64-bit int, got {value}")
    power = 0x8000000000000000 >> 8  # x^8: appending one zero byte
    acc = crc_a
    while len_b:
        if len_b & 1:
            acc = _mulmod(acc, power)
        len_b >>= 1
        if len_b:
            power = _mulmod(power, power)
    return acc ^ crc_b


# The twin has a single (portable) combine.
crc64_combine_portable = crc64_combine


def kernel_name() -> str:
    return "table"


def kernel_supported(name: str) -> bool:
    if name not in KERNELS:
        raise ValueError(f"unknown CRC-64 kernel {name!r}; known: {', '.join(KERNELS)}")
    return name == "table"


def select_kernel(name: str) -> None:
    """Only '' (best) and 'table' are accepted; the compiled kernels are an error here."""
    if name and not kernel_supported(name):
        raise _unsupported(name)


def _unsupported(name: str) -> RuntimeError:
    return RuntimeError(
        f"CRC-64 kernel {name!r} is not supported here: the pure-Python backend "
        "(COSFAST_NO_EXTENSIONS=1) has only the table kernel"
    )
