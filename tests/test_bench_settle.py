"""bench.settle: the wait between runs for the VM's free page reporting to go quiet."""
from __future__ import annotations

import threading
import time

from bench.settle import settle_memory


def test_no_counter_means_no_wait(tmp_path):
    assert settle_memory(counter=tmp_path / "missing") == 0.0


def test_a_quiet_counter_ends_the_wait_after_quiet_for(tmp_path):
    counter = tmp_path / "reported_kib"
    counter.write_text("100\n")
    waited = settle_memory(quiet_for=0.2, poll=0.05, counter=counter)
    assert 0.2 <= waited < 1.0


def test_a_moving_counter_extends_the_wait_up_to_the_cap(tmp_path):
    counter = tmp_path / "reported_kib"
    counter.write_text("0\n")
    stop = threading.Event()

    def report() -> None:  # the kernel reporting freed memory for 0.6 s
        for n in range(1, 13):
            if stop.wait(0.05):
                return
            counter.write_text(f"{n * 512}\n")

    writer = threading.Thread(target=report)
    started = time.monotonic()
    writer.start()
    try:
        waited = settle_memory(quiet_for=0.3, poll=0.05, counter=counter)
    finally:
        stop.set()
        writer.join()
    assert waited >= 0.6 + 0.3 - 0.1  # waited through the reporting, then the quiet spell
    capped = settle_memory(quiet_for=5.0, at_most=0.3, poll=0.05, counter=counter)
    assert 0.3 <= capped < 1.0
    assert time.monotonic() - started < 5
