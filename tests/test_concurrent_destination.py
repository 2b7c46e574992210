"""Several downloads to one destination at once: the destination lock admits one, the others
are refused with a clear CosClientError, and the file that ends up there is the object."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import cosfast
from cosfast import CosConfig, CosS3Client
from cosfast.emulator import Fault
from cosfast.transfer.destination import DestinationLock, DownloadLockedError

MIB = 1024 * 1024
REPO_ROOT = str(Path(cosfast.__file__).resolve().parent.parent)

RACER = textwrap.dedent("""
    import json, sys, time
    from cosfast import CosClientError, CosConfig, CosS3Client
    config, bucket, dest, start_at = json.loads(sys.argv[1])
    client = CosS3Client(CosConfig(**config))
    time.sleep(max(0.0, start_at - time.time()))
    try:
        client.download_file(bucket, "obj", dest, PartSize=1, MAXThread=2)
    except CosClientError as exc:
        print("REFUSED", exc)
        sys.exit(3)
    print("OK")
""")


def leftovers(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if ".cosfast" in p.name)


def test_the_lock_admits_one_holder_at_a_time(tmp_path):
    # Before the fix a download could hold a lock on a lock file its previous holder had just
    # unlinked while another one locked the new file: up to 4 holders at once here.
    path = str(tmp_path / ".o.cosfast.lock")
    guard = threading.Lock()
    holders = peak = acquired = 0

    def contend() -> None:
        nonlocal holders, peak, acquired
        for _ in range(1500):
            lock = DestinationLock(path)
            try:
                lock.acquire()
            except DownloadLockedError:
                continue
            with guard:
                holders += 1
                peak = max(peak, holders)
                acquired += 1
            time.sleep(0)
            with guard:
                holders -= 1
            lock.release()

    threads = [threading.Thread(target=contend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 1
    assert acquired > 0
    assert not os.path.exists(path)


@pytest.mark.timeout(120)
def test_processes_racing_to_one_destination_end_with_the_object(emulator, tmp_path):
    data = random.Random(5).randbytes(4 * MIB + 3)
    emulator.put("obj", data)
    # Slow enough that the racers overlap: each download takes about a second.
    emulator.add_fault(Fault(kind="slow", key="obj", method="GET", rate=2 * MIB, times=None))
    dest = tmp_path / "out.bin"
    for round_ in range(3):
        if dest.exists():
            dest.unlink()
        args = json.dumps([emulator.sdk_config(), emulator.bucket, str(dest), time.time() + 1.5])
        racers = [subprocess.Popen([sys.executable, "-c", RACER, args], env={**os.environ, "PYTHONPATH": REPO_ROOT},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                  for _ in range(3)]
        outcomes = []
        for racer in racers:
            out, err = racer.communicate(timeout=90)
            assert racer.returncode in (0, 3), err
            outcomes.append(out.split(" ", 1)[0].strip())
            if racer.returncode == 3:
                assert "another download" in out, out
        assert "OK" in outcomes, outcomes
        assert dest.read_bytes() == data, f"round {round_}: {outcomes}"
        assert leftovers(tmp_path) == []


def test_a_record_temp_left_by_a_killed_save_is_taken_over(emulator, tmp_path):
    # A save killed between writing the record's temp file and renaming it used to leave
    # ".o.cosfast.resume.<pid>.tmp" for ever; the temp name is now fixed, so the next save
    # takes it over.
    data = random.Random(6).randbytes(3 * MIB)
    emulator.put("obj", data)
    (tmp_path / ".o.cosfast.resume.tmp").write_bytes(b"cosfast-resume 1 00\n{half")
    CosS3Client(CosConfig(**emulator.sdk_config())).download_file(
        emulator.bucket, "obj", str(tmp_path / "o"), PartSize=1)
    assert (tmp_path / "o").read_bytes() == data
    assert leftovers(tmp_path) == []
