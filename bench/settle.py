"""Between runs: wait until the machine is in the same state for every run.

Memory: let the VM take back the memory the previous run freed, so that every run starts
from the same page-cache state.

On this kind of VM the guest kernel reports freed memory to the host (free page reporting), and
the host drops it: a page touched again later must be faulted in afresh, which costs several
times more than reusing a page the guest still holds. A run that starts while the previous
run's freed page cache is still unreported writes into cheap recycled pages; a run that starts a
few seconds later pays full price. Left to chance, that decides which contender looks faster
(seen here: strictly alternating fast and slow runs whatever the contender, 2.8 vs 1.2 GB/s).
Waiting until reporting has gone quiet puts every run in the same, paying, state.

Inodes: on ext4 without a journal (this VM's disk), allocating an inode skips, one by one, every
free inode of the group that was deleted in the last minute, or in the last six minutes while
its inode table block is dirty (fs/ext4/ialloc.c, recently_deleted()). After thousands of
files were removed (the end of the previous bench, a test run), each new file costs ~1 ms of
kernel time instead of 25-60 us, and two processes creating files in one folder spin on its
lock meanwhile: a 2000-file run measured the harness's earlier clean-up, not the contender
(perf: up to half of a run's CPU in find_inode_bit). The probe creates files where the runs
will and waits until that is cheap again.
"""
from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cosfast.transfer import pagecache

REPORTED_KIB = Path(pagecache.REPORTED_KIB)


def settle_memory(*, quiet_for: float = 1.5, at_most: float = 10.0, poll: float = 0.25,
                  counter: Path = REPORTED_KIB) -> float:
    """Waits until the kernel's count of reported memory has not moved for ``quiet_for``
    seconds (at most ``at_most`` seconds in all) and returns the seconds waited. Returns 0 at
    once where the kernel does not report free pages (no counter): freed pages are then simply
    reused, and there is nothing to wait for."""
    try:
        last = counter.read_text()
    except OSError:
        return 0.0
    start = quiet_since = time.monotonic()
    while True:
        time.sleep(poll)
        now = time.monotonic()
        current = counter.read_text()
        if current != last:
            last, quiet_since = current, now
        if now - quiet_since >= quiet_for or now - start >= at_most:
            return now - start


@dataclass(frozen=True)
class InodeSettle:
    waited: float  # seconds slept
    per_create: float  # CPU seconds per file created by the last probe
    settled: bool  # False: still above the limit when at_most ran out


def settle_inodes(folder: Path, *, limit: float = 75e-6, probe_files: int = 200,
                  at_most: float = 420.0, poll: float = 15.0) -> InodeSettle:
    """Creates ``probe_files`` empty files in ``folder``/.inode-probe and, while one costs more
    than ``limit`` CPU seconds, sleeps ``poll`` seconds and probes again (``at_most`` seconds in
    all). The probe files are kept: removing them would make the next files pay for them. The
    caller removes ``folder`` with its runs' trees at the end."""
    probe = folder / ".inode-probe"
    probe.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    names = (probe / str(n) for n in itertools.count(len(os.listdir(probe))))
    while True:
        cpu = time.process_time()
        for _ in range(probe_files):
            os.close(os.open(next(names), os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o644))
        per_create = (time.process_time() - cpu) / probe_files
        waited = time.monotonic() - start
        if per_create <= limit or waited + poll > at_most:
            return InodeSettle(waited=waited, per_create=per_create, settled=per_create <= limit)
        time.sleep(poll)
