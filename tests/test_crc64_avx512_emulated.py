"""The AVX-512 kernel and the CPU probe, run on an emulated CPU (Bochs via bochscpu-python,
tests/bochs_x86.py) because the machines this project runs on lack AVX-512.

The kernel sources are linked into a freestanding image (no libc, no Python) and called with
the System V ABI, exactly as compiled for the extension. Results are checked against the table
kernel run natively. A control run on a model without VPCLMULQDQ must fault (#UD), which shows
the emulator enforces the instruction set rather than running anything it is given.
"""
from __future__ import annotations

import json
import platform
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cosfast
from cosfast.crc64 import crc64_with_kernel

pytestmark = [
    pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 kernels and emulator"),
    pytest.mark.skipif(cosfast.backend != "compiled", reason="compares with the compiled table kernel"),
]

REPO = Path(cosfast.__file__).resolve().parent.parent
SRC = REPO / "src_c"
BASE = 0x400000
# Bochs cpu models by index in bochscpu-python 0.4.0 (pinned in pyproject): the probe checks
# below confirm what each one reports, so a shifted list fails loudly instead of passing.
TIGERLAKE, CANNONLAKE = 29, 27  # AVX-512F/VL with / without VPCLMULQDQ
XCR0_ZMM, XCR0_YMM, XCR0_SSE = 0xE7, 0x07, 0x03
UD = 6  # invalid-opcode exception vector

ENTRY = """
.section .text.entry, "ax"
.globl _start
_start:
    call *%rax
    hlt
.section .note.GNU-stack, "", @progbits
"""
LINKER_SCRIPT = """
ENTRY(_start)
SECTIONS {
  . = 0x400000;
  .text : { *(.text.entry) *(.text*) }
  .rodata : { *(.rodata*) }
  .data : { *(.data*) }
  .bss : { *(.bss*) *(COMMON) }
  _end = .;
  /DISCARD/ : { *(.note*) *(.comment) *(.eh_frame*) }
}
"""
KERNEL_SOURCES = [
    "crc64_avx512.c", "crc64_vpclmul.c", "crc64_clmul.c", "crc64_table.c", "crc64_cpu.c", "crc64_combine.c",
]


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("avx512-image")
    (out / "entry.S").write_text(ENTRY)
    (out / "link.ld").write_text(LINKER_SCRIPT)
    elf, flat = out / "kernels.elf", out / "kernels.bin"
    subprocess.run(
        ["gcc", "-O3", "-std=gnu11", "-fno-pic", "-no-pie", "-fno-stack-protector",
         "-fcf-protection=none", "-nostdlib", "-static", "-Wl,-T," + str(out / "link.ld"),
         "-Wl,--build-id=none", "-I", str(SRC), str(out / "entry.S"),
         *(str(SRC / name) for name in KERNEL_SOURCES), "-o", str(elf)],
        check=True, capture_output=True,
    )
    subprocess.run(["objcopy", "-O", "binary", str(elf), str(flat)], check=True)
    symbols = {}
    for line in subprocess.run(["nm", str(elf)], check=True, capture_output=True, text=True).stdout.splitlines():
        match = re.fullmatch(r"([0-9a-f]+) \w (\S+)", line)
        if match:
            symbols[match.group(2)] = int(match.group(1), 16)
    blob = random.Random(512).randbytes(64 * 1024 + 64)
    (out / "data.bin").write_bytes(blob)
    return {"path": str(flat), "size": symbols["_end"] - BASE, "symbols": symbols,
            "data": str(out / "data.bin"), "blob": blob}


def emulate(image: dict, *, model: int, xcr0: int, calls: list) -> list:
    request = {"image": image["path"], "image_size": image["size"], "base": BASE, "model": model,
               "xcr0": xcr0, "data": image["data"], "calls": calls}
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("bochs_x86.py"))],
                          input=json.dumps(request), capture_output=True, text=True, timeout=240,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def probes(image: dict, *, model: int, xcr0: int) -> dict[str, int]:
    names = ["cosfast_cpu_has_clmul", "cosfast_cpu_has_vpclmul", "cosfast_cpu_has_avx512_vpclmul"]
    results = emulate(image, model=model, xcr0=xcr0,
                      calls=[[image["symbols"][n], 0, 0, 0] for n in names])
    return {n[len("cosfast_cpu_has_"):]: r for n, r in zip(names, results)}


@pytest.mark.timeout(300)
def test_probe_sees_avx512_vpclmul_only_when_cpu_and_os_both_allow_it(image):
    assert probes(image, model=TIGERLAKE, xcr0=XCR0_ZMM) == {"clmul": 1, "vpclmul": 1, "avx512_vpclmul": 1}
    # The CPU has the instructions but the "OS" does not save zmm (or ymm) state: refuse them.
    assert probes(image, model=TIGERLAKE, xcr0=XCR0_YMM) == {"clmul": 1, "vpclmul": 1, "avx512_vpclmul": 0}
    assert probes(image, model=TIGERLAKE, xcr0=XCR0_SSE) == {"clmul": 1, "vpclmul": 0, "avx512_vpclmul": 0}
    # AVX-512 without VPCLMULQDQ (Cannon Lake).
    assert probes(image, model=CANNONLAKE, xcr0=XCR0_ZMM) == {"clmul": 1, "vpclmul": 0, "avx512_vpclmul": 0}


def kernel_cases() -> list[tuple[int, int, int]]:
    """(initial crc, offset, length): every length to 1100 (the 512-byte cut-over, one and more
    256-byte steps, every tail) at four offsets, then larger random ones at any offset."""
    rnd = random.Random(1)
    cases = [(rnd.getrandbits(64), offset, n) for offset in (0, 1, 7, 13) for n in range(1101)]
    cases += [(rnd.getrandbits(64), rnd.randrange(64), rnd.randrange(1101, 64 * 1024)) for _ in range(200)]
    cases += [(0, 0, 64 * 1024), (0, 3, 4096), (2**64 - 1, 5, 4096 + 255)]
    return cases


@pytest.mark.timeout(300)
def test_avx512_kernel_equals_table_kernel_on_emulated_tiger_lake(image):
    fn = image["symbols"]["cosfast_crc64_avx512"]
    cases = kernel_cases()
    results = emulate(image, model=TIGERLAKE, xcr0=XCR0_ZMM,
                      calls=[[fn, crc, f"$DATA+{offset}", n] for crc, offset, n in cases])
    blob = memoryview(image["blob"])
    wrong = [(crc, offset, n, got) for (crc, offset, n), got in zip(cases, results)
             if got != crc64_with_kernel("table", blob[offset:offset + n], crc)]
    assert wrong == []


@pytest.mark.timeout(300)
def test_emulator_refuses_avx512_kernel_without_vpclmulqdq(image):
    # The control experiment: short inputs take the table path and return; long ones reach
    # VPCLMULQDQ, which this model lacks.
    fn = image["symbols"]["cosfast_crc64_avx512"]
    short, long = emulate(image, model=CANNONLAKE, xcr0=XCR0_ZMM,
                          calls=[[fn, 0, "$DATA+0", 9], [fn, 0, "$DATA+0", 4096]])
    assert short == crc64_with_kernel("table", image["blob"][:9])
    assert long == {"exception": UD}
