"""download_dir in forked worker processes (cosfast.transfer.batch_workers): when it is chosen,
callbacks in the calling thread, a worker killed mid-batch, an interrupted parent. The common
behaviour (pages, keys, filters, faults, resume) runs in both modes in test_download_dir.py."""
from __future__ import annotations

import gc
import glob
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from pathlib import Path

import pytest

import cosfast
from cosfast import CosClientError, CosConfig, CosS3Client
from cosfast.emulator import Fault
from cosfast.transfer.batch import DOWNLOADED, FAILED, BatchOptions, ListedObject, ListingPage
from cosfast.transfer.batch_workers import MIN_OBJECTS_FOR_WORKERS, process_count
from cosfast.transfer.destination import UnverifiedDownloadWarning
from cosfast.transfer.download import DownloadOptions
from cosfast.transfer.engine import EngineOptions

REPO_ROOT = str(Path(cosfast.__file__).resolve().parent.parent)

pytestmark = pytest.mark.timeout(120)


def client_for(emulator) -> CosS3Client:
    return CosS3Client(CosConfig(**emulator.sdk_config()))


def payload(i: int, size: int) -> bytes:
    return (f"{i:08d}".encode() * (size // 8 + 1))[:size]


def children() -> list[int]:
    pids = []
    for path in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        with open(path) as f:
            pids.extend(int(pid) for pid in f.read().split())
    return pids


def page(count: int, truncated: bool = False) -> ListingPage:
    objects = [ListedObject(f"k{i}", 1, "e", "") for i in range(count)]
    return ListingPage(objects, "k" if truncated else None)


def options(processes=None, connections: int = 16, lanes=None) -> BatchOptions:
    engine = EngineOptions(max_connections=connections, lanes=lanes)
    return BatchOptions(download=DownloadOptions(max_connections=connections, engine=engine), processes=processes)


# -- when workers are used -----------------------------------------------------------------------

def test_explicit_process_counts_are_capped_by_the_connections():
    assert process_count(options(processes=3), page(1)) == 3
    assert process_count(options(processes=8, connections=2), page(1)) == 2
    assert process_count(options(processes=1), page(5000)) == 0
    assert process_count(options(processes=0), page(5000)) == 0


def test_automatic_choice_stays_in_process_with_other_threads_running():
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert process_count(options(lanes=2), page(1000, truncated=True)) == 0
    finally:
        stop.set()
        other.join()


def _dealt(count: int, path_length: int, windows=(64, 64)) -> list[int]:
    """How many of ``count`` placed objects WorkerPool._top_up gives each of two workers (real
    pipes; the messages are read back from the workers' ends)."""
    from multiprocessing import Pipe

    from cosfast.transfer.batch import END
    from cosfast.transfer.batch_workers import WorkerPool, _Worker

    ends, workers = [], []
    for window in windows:
        parent_end, child_end = Pipe()
        ends.append(child_end)
        workers.append(_Worker(pid=0, conn=parent_end, window=window))
    items = iter([(ListedObject(f"k{i:04d}", 1, '"e"', ""), "/" + "p" * path_length, True) for i in range(count)])
    assert WorkerPool(workers)._top_up(lambda block: next(items, None), workers) is False  # no END given
    got = []
    for end in ends:
        got.append(len(end.recv()) if end.poll() else 0)
        assert not end.poll()  # one message each
    assert [len(w.outstanding) for w in workers] == got
    return got


def test_a_short_listing_is_shared_between_the_workers():
    assert _dealt(100, 20) == [50, 50]
    assert _dealt(3, 20) == [2, 1]
    assert _dealt(500, 20) == [64, 64]  # each up to its window
    assert _dealt(100, 20, windows=(64, 10)) == [64, 10]


def test_the_work_outstanding_at_a_worker_stays_below_a_socket_buffer():
    # 4000-character paths: a window's worth would not fit a socket buffer; bytes bound it.
    dealt = _dealt(100, 4000)
    assert dealt[0] == dealt[1] and 0 < dealt[0] < 64
    assert dealt[0] * 3 * 4000 < 208 * 1024


AUTO_SCRIPT = textwrap.dedent("""
    import glob, json, os, sys, threading
    sys.path.insert(0, {root!r})
    from cosfast import CosConfig, CosS3Client
    import cosfast.transfer.engine as engine
    engine._usable_cpus = lambda: 2  # as on a 2-core machine, whatever this one has
    config = json.loads(sys.argv[1])
    if sys.argv[2] == "thread":
        threading.Thread(target=threading.Event().wait, daemon=True).start()
    seen = []
    def object_callback(result):
        if not seen:
            seen.append(sum(len(open(p).read().split())
                            for p in glob.glob(f"/proc/{{os.getpid()}}/task/*/children")))
    summary = CosS3Client(CosConfig(**config)).download_dir(
        sys.argv[3], "auto/", sys.argv[4], object_callback=object_callback)
    print(json.dumps({{"children": seen[0], "downloaded": summary.downloaded}}))
""")


@pytest.mark.parametrize("setting,expected_children", [("alone", 2), ("thread", 0)])
def test_a_single_threaded_caller_gets_one_worker_per_core(emulator, tmp_path, setting, expected_children):
    import json

    for i in range(MIN_OBJECTS_FOR_WORKERS):
        emulator.put(f"auto/{i:03d}", payload(i, 1000))
    script = tmp_path / "auto.py"
    script.write_text(AUTO_SCRIPT.format(root=REPO_ROOT))
    out = subprocess.run([sys.executable, str(script), json.dumps(emulator.sdk_config()), setting,
                          emulator.bucket, str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=60, check=True)
    report = json.loads(out.stdout)
    assert report == {"children": expected_children, "downloaded": MIN_OBJECTS_FOR_WORKERS}


# -- behaviour ------------------------------------------------------------------------------------

def test_callbacks_run_in_the_calling_thread_with_monotonic_progress(emulator, tmp_path):
    for i in range(150):
        emulator.put(f"cb/{i:03d}", payload(i, 5000 + i))
    total = sum(5000 + i for i in range(150))
    caller = threading.get_ident()
    threads, progress, results = set(), [], []

    def on_progress(consumed, total_now):
        threads.add(threading.get_ident())
        progress.append((consumed, total_now))

    def on_object(result):
        threads.add(threading.get_ident())
        results.append(result)

    summary = client_for(emulator).download_dir(emulator.bucket, "cb/", str(tmp_path), MaxKeys=40, Processes=2,
                                                progress_callback=on_progress, object_callback=on_object)
    assert (summary.downloaded, summary.failed, summary.bytes) == (150, [], total)
    assert threads == {caller}
    assert sorted(r.key for r in results) == [f"cb/{i:03d}" for i in range(150)]
    assert all(consumed <= total_now for consumed, total_now in progress)
    assert [c for c, _ in progress] == sorted(c for c, _ in progress)
    assert progress[-1] == (total, total)
    for i in range(150):
        assert (tmp_path / f"{i:03d}").read_bytes() == payload(i, 5000 + i)
    assert children() == []  # every worker reaped


def test_idle_workers_wait_for_a_late_listing_page(emulator, tmp_path):
    count = 30
    for i in range(count):
        emulator.put(f"late/{i:02d}", payload(i, 2000))
    # MaxKeys=10: pages of 10. The second page comes a second late, so the workers finish the
    # first page's objects and the parent has nothing to wait for but the listing.
    emulator.add_fault(Fault("delay", scope="listing", bucket=emulator.bucket, marker="late/09", seconds=1.0))
    summary = client_for(emulator).download_dir(emulator.bucket, "late/", str(tmp_path), MaxKeys=10, Processes=2)
    assert (summary.downloaded, summary.failed) == (count, [])
    for i in range(count):
        assert (tmp_path / f"{i:02d}").read_bytes() == payload(i, 2000)
    log = emulator.request_log
    (late,) = [r for r in log if r.key is None and r.query.get("marker") == "late/09"]
    assert late.faults == ["delay"]
    first_page = [r for r in log if r.key is not None and r.key < "late/10"]
    assert len(first_page) == 10 and max(r.ended for r in first_page) < late.ended
    assert children() == []


def test_a_worker_killed_mid_batch_fails_its_objects_and_the_others_land(emulator, tmp_path):
    count = 24
    for i in range(count):
        emulator.put(f"kill/{i:02d}", payload(i, 20000))
    # Every GET stalls a moment, so each worker has objects outstanding when one is killed.
    emulator.add_fault(Fault("stall", bucket=emulator.bucket, method="GET", after_bytes=10, seconds=0.2, times=None))
    victims: list[int] = []

    def on_object(result):
        if not victims:
            victims.append(children()[0])
            os.kill(victims[0], signal.SIGKILL)

    summary = client_for(emulator).download_dir(emulator.bucket, "kill/", str(tmp_path), MAXThread=2,
                                                Processes=2, object_callback=on_object)
    assert summary.downloaded + len(summary.failed) == count
    assert summary.failed, "the killed worker had objects outstanding"
    assert all(reason == "the worker process was killed by signal 9" for _, reason in summary.failed)
    failed = {key for key, _ in summary.failed}
    for i in range(count):
        if f"kill/{i:02d}" not in failed:
            assert (tmp_path / f"{i:02d}").read_bytes() == payload(i, 20000)
    assert children() == []


def test_an_interrupted_parent_stops_its_workers_and_leaves_no_temp_files(emulator, tmp_path):
    for i in range(60):
        emulator.put(f"int/{i:02d}", payload(i, 20000))
    emulator.add_fault(Fault("stall", bucket=emulator.bucket, method="GET", after_bytes=10, seconds=0.3, times=None))
    started = time.monotonic()

    def on_object(result):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client_for(emulator).download_dir(emulator.bucket, "int/", str(tmp_path), MAXThread=4, Processes=2,
                                          object_callback=on_object)
    assert time.monotonic() - started < 10
    assert children() == []
    landed = [p for p in tmp_path.iterdir()]
    assert all(".cosfast" not in p.name for p in landed), landed
    for p in landed:
        assert p.read_bytes() == payload(int(p.name), 20000)


def test_every_worker_gone_raises_for_the_run(emulator, tmp_path):
    for i in range(300):
        emulator.put(f"gone/{i:03d}", payload(i, 100))
    emulator.add_fault(Fault("stall", bucket=emulator.bucket, method="GET", after_bytes=10, seconds=0.2, times=None))
    killed = []

    def on_object(result):
        if not killed:
            killed.extend(children())
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    with pytest.raises(CosClientError, match="every worker process of the batch ended: the worker process was "
                                             "killed by signal 9"):
        client_for(emulator).download_dir(emulator.bucket, "gone/", str(tmp_path), MaxKeys=100, MAXThread=2,
                                          Processes=2, object_callback=on_object)
    assert children() == []


def test_results_of_both_kinds_reach_the_summary(emulator, tmp_path):
    for i in range(80):
        emulator.put(f"mixed/{i:02d}", payload(i, 3000))
    emulator.add_fault(Fault("status", bucket=emulator.bucket, key="mixed/07", status=403, code="AccessDenied",
                             times=None))
    statuses = {}
    summary = client_for(emulator).download_dir(emulator.bucket, "mixed/", str(tmp_path), Processes=3,
                                                object_callback=lambda r: statuses.setdefault(r.key, r.status))
    assert summary.downloaded == 79
    assert [key for key, _ in summary.failed] == ["mixed/07"]
    assert summary.failed[0][1].startswith("AccessDenied")
    assert statuses["mixed/07"] == FAILED and list(statuses.values()).count(DOWNLOADED) == 79


def test_warnings_and_log_records_of_workers_reach_the_caller(emulator, tmp_path, caplog):
    for i in range(6):
        emulator.put(f"old/{i}", payload(i, 1000), with_crc=False)
    caplog.set_level(logging.WARNING, logger="cosfast")
    with pytest.warns(UnverifiedDownloadWarning, match="x-cos-hash-crc64ecma") as caught:
        summary = client_for(emulator).download_dir(emulator.bucket, "old/", str(tmp_path), EnableCRC=True,
                                                    Processes=2)
    assert summary.downloaded == 6 and not summary.failed
    assert len([w for w in caught if w.category is UnverifiedDownloadWarning]) == 6
    logged = [r for r in caplog.records if r.name.startswith("cosfast")]
    assert len(logged) == 6 and all("has no x-cos-hash-crc64ecma" in r.getMessage() for r in logged)
    assert all(r.process != os.getpid() for r in logged)  # they were logged in the workers


def test_the_callers_objects_stay_collectable_after_the_workers_fork(emulator, tmp_path):
    # The workers are forked with every object frozen (out of their garbage collections); the
    # parent must unfreeze its own, or a cycle the caller dropped would never be collected.
    for i in range(MIN_OBJECTS_FOR_WORKERS):
        emulator.put(f"gc/{i:02d}", payload(i, 100))

    class Node:
        pass

    cycle = Node()
    cycle.self = cycle  # type: ignore[attr-defined]
    alive = weakref.ref(cycle)
    summary = client_for(emulator).download_dir(emulator.bucket, "gc/", str(tmp_path), Processes=2)
    assert summary.downloaded == MIN_OBJECTS_FOR_WORKERS
    assert gc.get_freeze_count() == 0
    del cycle
    gc.collect()
    assert alive() is None
