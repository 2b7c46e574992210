"""Runs freestanding x86-64 functions on an emulated CPU (Bochs, via bochscpu-python) so kernels
for instructions this machine lacks (AVX-512) are tested anyway. Run as a script in a subprocess
(Bochs keeps global state and nanobind prints leak notes at exit): a JSON request on stdin, a
JSON list of RAX values on stdout.

Request: {"image": path of a flat binary linked at "base", "image_size": bytes incl. .bss,
"model": Bochs cpu model index, "xcr0": XCR0 the "OS" enabled, "data": path of a blob mapped at
DATA, "calls": [[function address, rdi, rsi, rdx], ...]}; "$DATA+n" as an argument is the blob's
address plus n. A call that faults instead of returning is reported as {"exception": vector}.
"""
from __future__ import annotations

import ctypes
import json
import subprocess
import sys
import tempfile
from pathlib import Path

PAGE = 4096
PML4, DATA, STACK = 0x100000, 0x1000000, 0x2000000
STACK_PAGES = 8

# bochscpu-python 0.4.0 wheels reference two glibc 2.38 symbols; older glibc (Debian 12) lacks
# them. Both have exact older equivalents (the C23 forms only add 0b literals).
GLIBC_238_SHIM = r"""
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
unsigned long long __isoc23_strtoull(const char *s, char **end, int base) { return strtoull(s, end, base); }
int __isoc23_sscanf(const char *s, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt); int r = vsscanf(s, fmt, ap); va_end(ap); return r;
}
"""


def load_bochscpu(model: int):
    with tempfile.TemporaryDirectory() as tmp:
        src, lib = Path(tmp, "shim.c"), Path(tmp, "shim.so")
        src.write_text(GLIBC_238_SHIM)
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", str(src), "-o", str(lib)], check=True)
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
    import bochscpu
    import bochscpu._bochscpu as native
    import bochscpu.cpu
    import bochscpu.memory

    # The CPU model is a Bochs enum parameter read when the first CPU is made; the binding does
    # not expose it, the library exports the accessors.
    so = ctypes.CDLL(native.__file__)
    so.sim_get_param_enum.restype = ctypes.c_void_p
    so.sim_get_param_enum.argtypes = [ctypes.c_char_p]
    set_enum = so._ZN15bx_param_enum_c3setEl
    set_enum.argtypes = [ctypes.c_void_p, ctypes.c_long]
    set_enum(so.sim_get_param_enum(b"cpu.model"), model)
    return bochscpu


class Machine:
    """One emulated CPU with flat ring-0 long mode, identity-mapped image, data and stack."""

    def __init__(self, bochscpu, image: bytes, image_size: int, base: int, data: bytes, xcr0: int):
        self.bx = bochscpu
        self.session = bochscpu.Session()
        self.session.missing_page_handler = self._missing_page
        self.events: list[tuple] = []
        table = bochscpu.memory.PageMapLevel4Table()
        for start, size in ((base, image_size), (DATA, len(data) + PAGE), (STACK, STACK_PAGES * PAGE)):
            for page in range(start, start + size, PAGE):
                bochscpu.memory.page_insert(page, bochscpu.memory.allocate_host_page())
                table.insert(page, page, 1)  # 1: writable
        for hva, gpa in table.commit(PML4):
            bochscpu.memory.page_insert(gpa, hva)
        self.page_table = table  # owns the page-table pages just inserted: keep it alive
        assert bochscpu.memory.virt_write(PML4, base, list(image))
        if data:
            assert bochscpu.memory.virt_write(PML4, DATA, list(data))
        self.base, self.xcr0 = base, xcr0
        events = self.events

        def on_exception(session, cpu_id, vector, error_code):
            events.append(("exception", vector))
            session.stop()

        def on_hlt(session, cpu_id):
            events.append(("hlt",))
            session.stop()

        self.hook = bochscpu.Hook()
        self.hook.exception = on_exception
        self.hook.hlt = on_hlt

    @staticmethod
    def _missing_page(gpa: int) -> None:
        raise RuntimeError(f"emulated code touched unmapped memory at {gpa:#x}")

    def _segment(self, selector: int, attr: int):
        seg = self.bx.Segment()
        seg.present, seg.selector, seg.base, seg.limit, seg.attr = True, selector, 0, 0xFFFFFFFF, attr
        return seg

    def call(self, fn: int, rdi: int, rsi: int, rdx: int):
        """Runs the image's entry stub (call *%rax; hlt) with fn in RAX."""
        state = self.bx.State()
        self.bx.cpu.set_long_mode(state)
        state.cr3 = PML4
        state.cr4 = state.cr4 | (1 << 9) | (1 << 10) | (1 << 18)  # OSFXSR, OSXMMEXCPT, OSXSAVE
        state.xcr0 = self.xcr0
        state.rsp = STACK + STACK_PAGES * PAGE - 64
        state.rip = self.base
        state.rax, state.rdi, state.rsi, state.rdx = fn, rdi, rsi, rdx
        state.cs = self._segment(0x10, 0x229B)  # ring 0, 64-bit code
        data = self._segment(0x18, 0xC93)       # ring 0, data
        state.ds = state.ss = state.es = state.fs = state.gs = data
        self.session.cpu.state = state
        self.events.clear()
        self.session.run([self.hook])
        if self.events != [("hlt",)]:
            return {"exception": self.events[0][1] if self.events else None}
        return self.session.cpu.state.rax


def resolve(arg):
    if isinstance(arg, str) and arg.startswith("$DATA+"):
        return DATA + int(arg[len("$DATA+"):])
    return arg


def main() -> None:
    request = json.load(sys.stdin)
    bochscpu = load_bochscpu(request["model"])
    data = Path(request["data"]).read_bytes() if request.get("data") else b""
    machine = Machine(bochscpu, Path(request["image"]).read_bytes(), request["image_size"],
                      request["base"], data, request["xcr0"])
    results = [machine.call(*(resolve(a) for a in call)) for call in request["calls"]]
    json.dump(results, sys.stdout)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
