"""bench.settle: the waits between runs (freed memory going back to the VM, cheap inodes again)."""
from __future__ import annotations

import threading
import time

from bench.settle import settle_inodes, settle_memory


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


def test_inode_probe_on_a_fresh_folder_is_settled_at_once(tmp_path):
    state = settle_inodes(tmp_path / "dest", limit=0.05, probe_files=50, poll=0.05)
    assert state.settled and state.waited < 1.0
    assert 0 < state.per_create <= 0.05
    assert len(list((tmp_path / "dest" / ".inode-probe").iterdir())) == 50  # kept, not removed


def test_inode_probe_above_the_limit_waits_until_at_most_and_says_so(tmp_path):
    state = settle_inodes(tmp_path, limit=0.0, probe_files=20, at_most=0.35, poll=0.1)
    assert not state.settled
    assert 0.2 <= state.waited <= 0.35 + 0.5
    # every probe made new files beside the old ones: nothing removed, no name reused
    made = sorted(int(p.name) for p in (tmp_path / ".inode-probe").iterdir())
    assert made == list(range(len(made))) and len(made) >= 60


def test_inode_probe_continues_numbering_in_an_existing_probe_folder(tmp_path):
    settle_inodes(tmp_path, limit=1.0, probe_files=5)
    settle_inodes(tmp_path, limit=1.0, probe_files=5)
    assert sorted(int(p.name) for p in (tmp_path / ".inode-probe").iterdir()) == list(range(10))
