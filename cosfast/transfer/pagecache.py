"""Whether a download recycles its file's page-cache pages (KeepPageCache; see TempFile's
``recycle`` in cosfast.partwriter).

Recycling pays where the kernel hands freed memory back to the VM's host (free page reporting):
there a page the download writes into for the first time must be faulted in again by the host,
and pages the download itself just freed cost several times less (measured here: 1 GiB from
nginx 1.2-1.4x as fast at ~0.6x the CPU). Where freed memory stays with the kernel (bare metal,
VMs without page reporting) fresh pages are cheap, and the early writeback only costs time
(measured here right after a big file was deleted, so that its freed pages were at hand: 10-20%
slower). So by default (None) a download recycles exactly where page reporting is active."""
from __future__ import annotations

import functools
from typing import Optional

# Total KiB of free memory the kernel has reported to the host since boot; absent or 0 where
# nothing takes freed memory back.
REPORTED_KIB = "/sys/module/page_reporting/parameters/reported_kib"


@functools.lru_cache(maxsize=8)
def host_takes_freed_memory(counter: str = REPORTED_KIB) -> bool:
    """True if this kernel reports freed memory to a host (read once per process)."""
    try:
        with open(counter, encoding="ascii") as f:
            return int(f.read().strip()) > 0
    except (OSError, ValueError):
        return False


def recycles_pages(keep_page_cache: Optional[bool]) -> bool:
    """Whether a download with this KeepPageCache setting recycles its pages (None: decided by
    the machine, see the module docstring)."""
    if keep_page_cache is None:
        return host_takes_freed_memory()
    return not keep_page_cache
