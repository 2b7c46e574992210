"""CRC-64/XZ throughput, side by side in one run: cosfast (dispatched and each kernel the CPU
runs), the official SDK's crcmod, fastcrc, anycrc, and a plain memory read; plus combine latency.

    python3 -m pytest bench/test_bench_crc64.py --benchmark-only

The summary table (GB/s = bytes / median time) is printed at the end and saved to
bench/results/crc64-<time>.json (see bench/conftest.py); bench/crc64_report.py takes medians
over several runs. Buffers are random bytes, made once.
"""
from __future__ import annotations

import functools
import os
from typing import Callable

import anycrc
import crcmod
import fastcrc
import numpy as np
import pytest

from cosfast import crc64 as cosfast_crc64

SIZES = {"256 MiB": 256 << 20, "64 KiB": 64 << 10}
_BUFFERS: dict[str, bytes] = {}


def buffer(size_name: str) -> bytes:
    if size_name not in _BUFFERS:
        _BUFFERS[size_name] = os.urandom(SIZES[size_name])
    return _BUFFERS[size_name]


def _kernel(name: str) -> Callable[[bytes], int]:
    # partial of the compiled function: no Python frame between the benchmark and the kernel.
    return functools.partial(cosfast_crc64._impl.crc64_with_kernel, name)


def _numpy_read(data: bytes) -> int:
    # Reads every byte once with SIMD and does next to nothing with it: the speed of memory
    # (256 MiB) or of the cache (64 KiB) as seen from Python, the ceiling for any checksum.
    return int(np.frombuffer(data, np.uint8).max())


_anycrc_xz = anycrc.Model("CRC64-XZ")

# name -> (function, slow: fewer rounds on 256 MiB)
CONTENDERS: dict[str, tuple[Callable[[bytes], int], bool]] = {
    f"cosfast crc64 (dispatched: {cosfast_crc64.KERNEL})": (cosfast_crc64.crc64, False),
    **{
        f"cosfast kernel {k}": (_kernel(k), k == "table")
        for k in cosfast_crc64.KERNELS
        if cosfast_crc64.kernel_supported(k)
    },
    "crcmod (official SDK)": (
        crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True),
        True,
    ),
    "fastcrc crc64.xz": (fastcrc.crc64.xz, False),
    "anycrc CRC64-XZ": (_anycrc_xz.calc, False),
    "memory read (numpy uint8 max)": (_numpy_read, False),
}

CHECK = 0x995DC9BBDF1939FA


@pytest.mark.parametrize("size_name", list(SIZES))
@pytest.mark.parametrize("contender", list(CONTENDERS))
def test_crc64_throughput(benchmark, contender, size_name):
    fn, slow = CONTENDERS[contender]
    if contender.startswith("memory read"):
        fn(b"\x00")
    else:
        assert fn(b"123456789") == CHECK  # a fast wrong answer is worth nothing
    data = buffer(size_name)
    benchmark.group = f"crc64 {size_name}"
    benchmark.extra_info.update(contender=contender, size=size_name, nbytes=len(data))
    if slow and len(data) > (1 << 20):
        benchmark.pedantic(fn, args=(data,), rounds=3, iterations=1, warmup_rounds=0)
    else:
        benchmark(fn, data)


COMBINE_LENGTHS = {"len 8 MiB": 8 << 20, "len 2^40-1 (40 multiplies)": (1 << 40) - 1}
COMBINERS = {
    "cosfast crc64_combine": cosfast_crc64.crc64_combine,
    "anycrc combine": _anycrc_xz.combine,
}


@pytest.mark.parametrize("length_name", list(COMBINE_LENGTHS))
@pytest.mark.parametrize("combiner", list(COMBINERS))
def test_combine_latency(benchmark, combiner, length_name):
    fn = COMBINERS[combiner]
    a, b = b"12345", b"6789"
    assert fn(cosfast_crc64.crc64(a), cosfast_crc64.crc64(b), len(b)) == CHECK
    benchmark.group = "crc64_combine"
    benchmark.extra_info.update(contender=combiner, size=length_name)
    benchmark(fn, 0x0123456789ABCDEF, 0xFEDCBA9876543210, COMBINE_LENGTHS[length_name])
