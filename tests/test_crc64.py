"""CRC-64/XZ: known answers, every kernel against the table kernel, streaming, combine, buffers
over 4 GiB and of every kind, forcing kernels through the environment, and the same suite on
the pure-Python twin (COSFAST_NO_EXTENSIONS=1, run in a subprocess by the compiled run).

Oracles that share no code with the kernels: crcmod (what the official SDK uses) and the twin.
"""
from __future__ import annotations

import array
import mmap
import os
import random
import re
import subprocess
import sys
import threading
from pathlib import Path

import crcmod
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cosfast
from cosfast import _crc64_py as twin
from cosfast import crc64 as pub
from cosfast.crc64 import KERNEL, KERNELS, Crc64, crc64, crc64_combine, crc64_file

REPO = Path(cosfast.__file__).resolve().parent.parent
COMPILED = cosfast.backend == "compiled"
MASK64 = (1 << 64) - 1
CHECK = 0x995DC9BBDF1939FA  # crc64(b"123456789"), the catalogue's check value

RUNNABLE = [k for k in KERNELS if pub.kernel_supported(k)]
UNSUPPORTED = [k for k in KERNELS if not pub.kernel_supported(k)]
ACCELERATED = [k for k in RUNNABLE if k != "table"]

# The official SDK's function (qcloud_cos/resumable_downloader.py, __check_crc).
sdk_crc64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True)

# The twin runs at about a MB/s: the compiled run uses full sizes, the twin run scaled ones.
BIG = 64 << 20 if COMPILED else 64 << 10

hyp = settings(max_examples=200 if COMPILED else 40, deadline=None)


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def zeros_crc(n: int) -> int:
    """crc64 of n zero bytes without touching n bytes: crcmod on 1 MiB, extended by the twin's
    combine (crc(Z_2k) = combine(crc(Z_k), crc(Z_k), k)), independent of the compiled code."""
    block = 1 << 20
    acc, power, power_len = 0, sdk_crc64(bytes(block)), block
    blocks = n // block
    while blocks:
        if blocks & 1:
            acc = twin.crc64_combine(acc, power, power_len)
        power = twin.crc64_combine(power, power, power_len)
        power_len *= 2
        blocks >>= 1
    tail = n % block
    return twin.crc64_combine(acc, sdk_crc64(bytes(tail)), tail)


# -- known answers -----------------------------------------------------------------------------

def test_backend_is_compiled_unless_told_otherwise():
    told = os.environ.get("COSFAST_NO_EXTENSIONS", "") not in ("", "0")
    assert cosfast.backend == ("python" if told else "compiled")
    assert KERNEL in RUNNABLE
    assert "table" in RUNNABLE


def test_dispatch_picks_the_best_runnable_kernel():
    forced = os.environ.get("COSFAST_CRC64_IMPL", "")
    assert KERNEL == (forced or RUNNABLE[0])


@pytest.mark.parametrize("kernel", RUNNABLE)
def test_check_value_and_empty(kernel):
    assert pub.crc64_with_kernel(kernel, b"123456789") == CHECK
    assert pub.crc64_with_kernel(kernel, b"") == 0
    assert pub.crc64_with_kernel(kernel, b"", 12345) == 12345


def test_public_and_twin_check_value():
    for impl in (crc64, twin.crc64):
        assert impl(b"123456789") == CHECK
        assert impl(b"") == 0
    assert sdk_crc64(b"123456789") == CHECK


def test_equals_the_official_sdk_crcmod_on_random_data():
    rnd = random.Random(7)
    sizes = [1, 15, 16, 17, 127, 128, 255, 256, 511, 512, 1000]
    for n in sizes + ([65535, 65536, 65537, 1 << 20] if COMPILED else []):
        data = rnd.randbytes(n)
        assert crc64(data) == sdk_crc64(data), n


def test_the_twin_table_equals_crcmod():
    rnd = random.Random(8)
    for n in range(0, 300, 13):
        data = rnd.randbytes(n)
        assert twin.crc64(data) == sdk_crc64(data)


# -- every kernel against the table kernel -----------------------------------------------------

@pytest.mark.parametrize("kernel", ACCELERATED)
def test_kernel_equals_table_on_all_lengths_and_offsets(kernel):
    rnd = random.Random(kernel)
    data = memoryview(rnd.randbytes(4096 + 16))
    mismatches = []
    for offset in range(16):
        for n in range(4097):
            view = data[offset:offset + n]
            seed = (n * 0x9E3779B97F4A7C15 + offset) & MASK64  # a different running CRC each time
            if pub.crc64_with_kernel(kernel, view, seed) != pub.crc64_with_kernel("table", view, seed):
                mismatches.append((offset, n))
    assert mismatches == []


@pytest.mark.parametrize("kernel", ACCELERATED)
def test_kernel_reads_nothing_past_a_buffer_of_exact_size(kernel):
    # Each input is its own allocation, so an over-read shows under AddressSanitizer
    # (COSFAST_SANITIZE=1 build, PYTHONMALLOC=malloc; see setup.py) instead of reading a neighbour.
    rnd = random.Random(f"exact-{kernel}")
    for n in range(1100):
        data = bytearray(rnd.randbytes(n))
        assert pub.crc64_with_kernel(kernel, data, n) == pub.crc64_with_kernel("table", data, n), n


@pytest.mark.parametrize("kernel", ACCELERATED)
def test_kernel_equals_table_on_random_buffers_up_to_64_mib(kernel):
    rnd = random.Random(f"big-{kernel}")
    data = memoryview(rnd.randbytes(BIG + 16))
    sizes = sorted({rnd.randrange(4097, BIG) for _ in range(4)} | {BIG, BIG - 1, 1 << 16, (1 << 16) + 1})
    for n in sizes:
        offset = rnd.randrange(16)
        view = data[offset:offset + n]
        assert pub.crc64_with_kernel(kernel, view) == pub.crc64_with_kernel("table", view), (n, offset)


def test_table_kernel_equals_twin_on_small_lengths_and_offsets():
    rnd = random.Random(3)
    data = memoryview(rnd.randbytes(300))
    for offset in range(8):
        for n in range(0, 300 - offset, 5):
            assert pub.crc64_with_kernel("table", data[offset:offset + n]) == twin.crc64(data[offset:offset + n])


def test_fold_constants_header_is_what_the_generator_derives():
    generated = subprocess.run(
        [sys.executable, str(REPO / "src_c" / "gen_crc64_constants.py")],
        capture_output=True, text=True, check=True,
    ).stdout
    assert generated == (REPO / "src_c" / "crc64_fold_constants.h").read_text()


def xpow_by_table_crc(e: int) -> int:
    """x^e mod P (e >= 64), reflected, from the plain table CRC: the raw register of a message of
    N bytes whose only set bit is stream bit j equals x^(8N - 1 - j + 64) mod P."""
    j = (63 - e) % 8
    n = (e - 63 + j) // 8
    message = bytes([1 << j]) + bytes(n - 1)
    return twin.crc64(message, MASK64) ^ MASK64  # crc=~0: the register starts at 0


def test_fold_constants_are_powers_of_x_by_an_independent_route():
    # Covers the constants only the AVX-512 kernel uses, which cannot run on every CPU.
    header = (REPO / "src_c" / "crc64_fold_constants.h").read_text()
    pairs = re.findall(r"COSFAST_CRC64_FOLD_(\d+)_(LO|HI) 0x([0-9A-F]+)ULL", header)
    assert {int(n) for n, _, _ in pairs} >= {1, 2, 3, 4, 5, 6, 7, 8, 16}
    for n, half, value in pairs:
        exponent = 128 * int(n) + (63 if half == "LO" else -1)
        assert int(value, 16) == xpow_by_table_crc(exponent), (n, half)


# -- unsupported and unknown kernels -----------------------------------------------------------

@pytest.mark.parametrize("kernel", UNSUPPORTED)
def test_unsupported_kernel_is_a_clear_error(kernel):
    with pytest.raises(RuntimeError, match=f"'{kernel}' is not supported here"):
        pub.crc64_with_kernel(kernel, b"123456789")


def test_unknown_kernel_is_a_value_error():
    for call in (lambda: pub.kernel_supported("sse9"), lambda: pub.crc64_with_kernel("sse9", b"x")):
        with pytest.raises(ValueError, match="unknown CRC-64 kernel 'sse9'"):
            call()


def test_avx512_runs_or_is_refused_clearly():
    data = random.Random(11).randbytes(100_000)
    if pub.kernel_supported("avx512"):
        assert pub.crc64_with_kernel("avx512", data) == pub.crc64_with_kernel("table", data)
    else:
        with pytest.raises(RuntimeError, match="needs|only the table kernel"):
            pub.crc64_with_kernel("avx512", data)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kernel", [*KERNELS, "sse9"])
def test_kernel_forced_through_the_environment(kernel):
    code = "import cosfast.crc64 as c; print(c.KERNEL, c.crc64(b'123456789'))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          env=child_env(COSFAST_CRC64_IMPL=kernel))
    if kernel in RUNNABLE:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [kernel, str(CHECK)]
    else:
        assert proc.returncode != 0
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("RuntimeError: COSFAST_CRC64_IMPL=")
        assert ("not supported here" in last) if kernel in KERNELS else ("unknown CRC-64 kernel" in last)


# -- streaming and combine ---------------------------------------------------------------------

def test_one_shot_equals_streamed_in_random_chunks():
    rnd = random.Random(4)
    data = rnd.randbytes(3 << 20 if COMPILED else 20_000)
    whole = crc64(data)
    for _ in range(5):
        stream, pos = Crc64(), 0
        while pos < len(data):
            step = rnd.choice([0, 1, 7, 15, 16, 17, 255, 4096, 65535, 65536, 200_000])
            stream.update(memoryview(data)[pos:pos + step])
            pos += step
        assert (stream.value, stream.length) == (whole, len(data))
        assert stream.cos_string() == str(whole) and int(stream) == whole


def test_copy_is_independent_and_initial_data_counts():
    a = Crc64(b"1234")
    b = a.copy()
    b.update(b"56789")
    assert a.value == crc64(b"1234") and a.length == 4
    assert b.value == CHECK and b.length == 9
    assert Crc64(b"123456789").value == CHECK
    assert repr(b) == f"Crc64(value={CHECK:#018x}, length=9)"


def test_streaming_object_is_safe_across_threads():
    chunk = random.Random(5).randbytes(100_000 if COMPILED else 500)  # any interleaving, same CRC
    stream, threads, per_thread = Crc64(), 4, 25
    workers = [threading.Thread(target=lambda: [stream.update(chunk) for _ in range(per_thread)])
               for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    expected, c = 0, crc64(chunk)
    for _ in range(threads * per_thread):
        expected = crc64_combine(expected, c, len(chunk))
    assert (stream.value, stream.length) == (expected, threads * per_thread * len(chunk))


COMBINES = [("compiled", crc64_combine), ("twin", twin.crc64_combine)]
if COMPILED:
    COMBINES.append(("compiled-portable", pub._impl.crc64_combine_portable))


@pytest.mark.parametrize("name,combine", COMBINES)
@hyp
@given(a=st.binary(max_size=600), b=st.binary(max_size=600))
def test_combine_equals_crc_of_concatenation(name, combine, a, b):
    assert combine(crc64(a), crc64(b), len(b)) == crc64(a + b)
    assert combine(twin.crc64(a), twin.crc64(b), len(b)) == twin.crc64(a + b)


@hyp
@given(crc_a=st.integers(0, MASK64), crc_b=st.integers(0, MASK64), len_b=st.integers(0, MASK64))
def test_combine_paths_agree_on_any_64_bit_length(crc_a, crc_b, len_b):
    expected = twin.crc64_combine(crc_a, crc_b, len_b)
    assert crc64_combine(crc_a, crc_b, len_b) == expected
    if COMPILED:
        assert pub._impl.crc64_combine_portable(crc_a, crc_b, len_b) == expected


def test_combine_rejects_values_outside_64_bits():
    for args in ((-1, 0, 0), (0, 1 << 64, 0), (0, 0, -1), (0, 0, 1 << 64)):
        with pytest.raises(OverflowError):
            crc64_combine(*args)
    with pytest.raises(OverflowError):
        crc64(b"x", -1)
    with pytest.raises(OverflowError):
        crc64(b"x", 1 << 64)


# -- buffers -----------------------------------------------------------------------------------

@pytest.mark.skipif(not COMPILED, reason="the pure-Python twin runs at about a MB/s: 4 GiB would take an hour")
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kernel", ["(dispatched)", *RUNNABLE])
def test_buffer_over_4_gib(kernel, zero_mapping):
    # The table kernel is ~15x slower: just past 4 GiB is enough to catch a 32-bit length.
    n = len(zero_mapping) if kernel != "table" else (4 << 30) + 5
    view = memoryview(zero_mapping)[:n]
    value = crc64(view) if kernel == "(dispatched)" else pub.crc64_with_kernel(kernel, view)
    assert value == zeros_crc(n)


@pytest.fixture(scope="module")
def zero_mapping():
    """5 GiB of zeros that cost no memory: a private read-only anonymous mapping reads the shared
    zero page (a huge one where the kernel allows, which makes the first pass fast)."""
    mapping = mmap.mmap(-1, 5 << 30, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    if hasattr(mapping, "madvise") and hasattr(mmap, "MADV_HUGEPAGE"):
        mapping.madvise(mmap.MADV_HUGEPAGE)
    yield mapping
    mapping.close()


def test_mmap_bytearray_memoryview_and_typed_arrays(tmp_path):
    data = random.Random(6).randbytes(200_003)
    expected = sdk_crc64(data)
    path = tmp_path / "blob"
    path.write_bytes(data)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        assert crc64(mapped) == expected
        assert Crc64(mapped).value == expected
    assert crc64(bytearray(data)) == expected
    assert crc64(memoryview(data)) == expected
    words = array.array("I", data[:200_000])  # multi-byte items: the CRC is over the raw bytes
    assert crc64(words) == sdk_crc64(data[:200_000])
    assert Crc64(words).length == 200_000
    assert crc64(memoryview(data).cast("B", (1, len(data)))) == expected  # 2-D but contiguous


@pytest.mark.parametrize("impl", [crc64, twin.crc64, lambda d: Crc64().update(d)])
def test_str_and_non_buffers_are_type_errors(impl):
    with pytest.raises(TypeError, match="not str"):
        impl("123456789")
    for bad in (12345, [1, 2, 3], None):
        with pytest.raises(TypeError):
            impl(bad)


@pytest.mark.parametrize("impl", [crc64, twin.crc64])
def test_non_contiguous_buffer_is_an_error(impl):
    strided = memoryview(bytes(range(100)))[::2]
    with pytest.raises(BufferError, match="contiguous"):
        impl(strided)


def test_crc64_file_whole_and_ranges(tmp_path):
    data = random.Random(9).randbytes((3 << 20) + 77 if COMPILED else 5000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert crc64_file(path) == crc64_file(str(path)) == sdk_crc64(data)
    assert crc64_file(path, offset=1000, length=3333) == sdk_crc64(data[1000:4333])
    assert crc64_file(path, offset=len(data)) == 0
    assert crc64_file(path, offset=17) == sdk_crc64(data[17:])
    with pytest.raises(EOFError, match="ended 10 bytes before"):
        crc64_file(path, offset=len(data) - 5, length=15)
    with pytest.raises(ValueError):
        crc64_file(path, offset=-1)
    with pytest.raises(FileNotFoundError):
        crc64_file(tmp_path / "missing")


# -- the twin run ------------------------------------------------------------------------------

@pytest.mark.skipif(not COMPILED, reason="this is the twin run itself")
@pytest.mark.timeout(300)
def test_this_suite_passes_on_the_pure_python_twin():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", __file__],
        capture_output=True, text=True, cwd=REPO, check=False,
        env=child_env(COSFAST_NO_EXTENSIONS="1", COSFAST_CRC64_IMPL=""),
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"\d+ passed", proc.stdout)
