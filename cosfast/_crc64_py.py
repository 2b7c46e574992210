"""Pure-Python CRC-64/XZ: the test oracle and the COSFAST_NO_EXTENSIONS=1 fallback.

Same interface as the compiled cosfast._crc64. Slow (a byte-at-a-time table loop), never used
on a hot path when the extension is built."""
from __future__ import annotations

POLY_REFLECTED = 0xC96C5795D7870F42
MASK64 = 0xFFFFFFFFFFFFFFFF
KERNELS = ("table", "clmul", "avx512")


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
        raise TypeError("crc64 takes a bytes-like object, not str")
    mv = memoryview(data)
    if not mv.c_contiguous:
        raise BufferError("crc64 needs a contiguous buffer")
    return mv.cast("B") if (mv.itemsize != 1 or mv.ndim != 1 or mv.format != "B") else mv


def crc64(data, crc: int = 0) -> int:
    """CRC-64/XZ of a contiguous buffer, continuing from ``crc``."""
    table = _TABLE
    c = crc ^ MASK64
    for b in _as_bytes(data):
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ MASK64


def crc64_with_kernel(name: str, data, crc: int = 0) -> int:
    if name != "table":
        raise ValueError(f"CRC-64 kernel {name!r} is not available in the pure-Python backend")
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
    if len_b < 0:
        raise OverflowError("len_b must be >= 0")
    power = 0x8000000000000000 >> 8  # x^8: appending one zero byte
    acc = crc_a
    while len_b:
        if len_b & 1:
            acc = _mulmod(acc, power)
        len_b >>= 1
        if len_b:
            power = _mulmod(power, power)
    return acc ^ crc_b


def kernel_name() -> str:
    return "table"


def kernel_supported(name: str) -> bool:
    if name not in KERNELS:
        raise ValueError(f"unknown CRC-64 kernel {name!r}; known: {', '.join(KERNELS)}")
    return name == "table"


def select_kernel(name: str) -> None:
    if name and not kernel_supported(name):
        raise RuntimeError(f"CRC-64 kernel {name!r} is not supported by the pure-Python backend")
