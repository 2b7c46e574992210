"""Known answers and the compiled/twin agreement for CRC-64/XZ."""
from __future__ import annotations

import os
import random

import pytest

import cosfast
from cosfast import _crc64_py, crc64 as crcmod_pub
from cosfast.crc64 import Crc64, crc64, crc64_combine, crc64_file


def test_backend_is_compiled_unless_told_otherwise():
    expected = "python" if os.environ.get("COSFAST_NO_EXTENSIONS") not in (None, "", "0") else "compiled"
    assert cosfast.backend == expected


@pytest.mark.parametrize("impl", [crc64, _crc64_py.crc64])
def test_known_answers(impl):
    assert impl(b"123456789") == 0x995DC9BBDF1939FA
    assert impl(b"") == 0
    assert impl(bytearray(b"123456789")) == 0x995DC9BBDF1939FA
    assert impl(memoryview(b"xx123456789")[2:]) == 0x995DC9BBDF1939FA


def test_str_is_type_error():
    with pytest.raises(TypeError):
        crc64("123456789")


def test_compiled_equals_twin_on_small_lengths():
    rnd = random.Random(1)
    data = bytes(rnd.getrandbits(8) for _ in range(600))
    for n in range(0, 600, 7):
        for off in (0, 1, 3):
            assert crc64(data[off:off + n]) == _crc64_py.crc64(data[off:off + n])


def test_combine_and_streaming(tmp_path):
    rnd = random.Random(2)
    a = rnd.randbytes(1000)
    b = rnd.randbytes(3333)
    whole = crc64(a + b)
    assert crc64_combine(crc64(a), crc64(b), len(b)) == whole
    assert _crc64_py.crc64_combine(crc64(a), crc64(b), len(b)) == whole
    assert crc64(b, crc64(a)) == whole
    s = Crc64()
    s.update(a).update(b)
    assert s.value == whole and s.length == len(a) + len(b)
    assert s.cos_string() == str(whole)
    p = tmp_path / "f"
    p.write_bytes(a + b)
    assert crc64_file(p) == whole
    assert crc64_file(p, offset=1000, length=3333) == crc64(b)
    assert crcmod_pub.KERNEL in crcmod_pub.KERNELS
