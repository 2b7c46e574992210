"""What a long run may leak, counted from /proc: file descriptors, TCP connections, memory,
and the files cosfast leaves beside a destination. Used by the soak and the crash loop."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import time
from pathlib import Path
from typing import Callable

# /proc/net/tcp state column: 01 is ESTABLISHED.
_ESTABLISHED = "01"


def open_fds() -> int:
    """File descriptors open in this process."""
    return len(os.listdir("/proc/self/fd"))


def trimmed_rss_bytes() -> int:
    """Resident set size after glibc has returned its free memory to the system. Freed large
    buffers otherwise stay resident (glibc raises its mmap threshold after freeing one, so later
    ones come from the heap), which looks like growth but is not live memory."""
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        libc = ctypes.CDLL(libc_name)
        if hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
    return rss_bytes()


def rss_bytes() -> int:
    """Resident set size of this process."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def connections_to(port: int) -> int:
    """Established TCP connections (of any process on this host) whose remote port is ``port``:
    the client side of connections to a local server."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)  # the column titles
                for line in f:
                    fields = line.split()
                    remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                    if remote_port == port and fields[3] == _ESTABLISHED:
                        count += 1
        except FileNotFoundError:
            continue
    return count


def cosfast_leftovers(folder: Path) -> list[str]:
    """Files cosfast may create beside a destination or in a record folder (temp files, locks,
    resume records and their temp files), anywhere under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if ".cosfast" in p.name or p.name.endswith(".cosfast-resume")
                  or ".cosfast-resume." in p.name)


def settle(measure: Callable[[], int], target: int, seconds: float = 3.0) -> int:
    """``measure()`` once it is at most ``target``, or its value after ``seconds``: closing a
    socket or a connection on the server side takes a moment to show in /proc."""
    deadline = time.monotonic() + seconds
    value = measure()
    while value > target and time.monotonic() < deadline:
        time.sleep(0.05)
        value = measure()
    return value


def mib(n: float) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"
