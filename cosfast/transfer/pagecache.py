"""Whether a download recycles its file's page-cache pages (KeepPageCache; see TempFile's
``recycle`` in cosfast.partwriter), and whether its parts' stages go to the disk with O_DIRECT
(DirectIO).

Recycling pays where the kernel hands freed memory back to the VM's host (free page reporting):
there a page the download writes into for the first time must be faulted in again by the host,
and pages the download itself just freed cost several times less (measured here: 1 GiB from
nginx 1.2-1.6x as fast at ~0.6x the CPU). Where the pages written into are cheap anyway (bare
metal and VMs without page reporting always; here right after other files freed their pages)
the early writeback only costs time, 10-20% for one big file. So by default (None) a download
recycles only where page reporting is active, and there only while its writes show the page
cache to be slow (recycle="when-slow"). Small objects (one GET) are written in pieces too
small to be timed (cosfast.transfer.single.WRITE_PIECE): such pieces get pages from the small
free fragments that stay in the guest, which are cheap, so they recycle only while a large
download in the same process finds the page cache slow. (Sessions 9-11 recycled small files
too, written whole: 1.90x the speed of keeping them on session 9's VM, 2000 x 256 KiB; written
in pieces, keeping them is faster still.)"""
from __future__ import annotations

import functools
from typing import Optional, Union

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


def recycling_for(keep_page_cache: Optional[bool]) -> Union[bool, str]:
    """TempFile's ``recycle`` under this KeepPageCache setting: False keeps the pages, True always
    recycles them, "when-slow" decides as the download goes (see the module docstring)."""
    if keep_page_cache is None:
        return "when-slow" if host_takes_freed_memory() else False
    return not keep_page_cache


def direct_for(direct_io: Optional[bool], keep_page_cache: Optional[bool]) -> Union[bool, str]:
    """PartSink's ``direct`` for the parts of a multi-part download under these DirectIO and
    KeepPageCache settings: DirectIO when given; by default (None) "auto", stages written with
    O_DIRECT while the disk keeps up (cosfast.partwriter), except that KeepPageCache=True asks
    for the file's bytes to stay in the page cache."""
    if direct_io is not None:
        return direct_io
    return False if keep_page_cache else "auto"
