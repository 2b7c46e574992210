"""Between runs: let the VM take back the memory the previous run freed, so that every run starts
from the same page-cache state.

On this kind of VM the guest kernel reports freed memory to the host (free page reporting), and
the host drops it: a page touched again later must be faulted in afresh, which costs several
times more than reusing a page the guest still holds. A run that starts while the previous
run's freed page cache is still unreported writes into cheap recycled pages; a run that starts a
few seconds later pays full price. Left to chance, that decides which contender looks faster
(seen here: strictly alternating fast and slow runs whatever the contender, 2.8 vs 1.2 GB/s).
Waiting until reporting has gone quiet puts every run in the same, paying, state.
"""
from __future__ import annotations

import time
from pathlib import Path

REPORTED_KIB = Path("/sys/module/page_reporting/parameters/reported_kib")


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
