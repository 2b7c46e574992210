"""download_file against the emulator: bytes, boundaries, faults, pinning, resume, limits.

Every test reads the emulator's request log to check what the client really did, and checks
that no temp file, lock or record is left next to the destination."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

import cosfast
from cosfast import CosClientError, CosConfig, CosS3Client, CosServiceError
from cosfast.crc64 import crc64
from cosfast.emulator import Fault
from cosfast.transfer.destination import UnverifiedDownloadWarning
from cosfast.transfer.record import ResumeRecord

MIB = 1024 * 1024
REPO_ROOT = str(Path(cosfast.__file__).resolve().parent.parent)


def leftovers(folder: Path) -> list[str]:
    """Files cosfast may create beside a destination (temp, lock, resume record)."""
    return sorted(p.name for p in folder.iterdir() if ".cosfast" in p.name)


def gets(emulator, key: str) -> list:
    return [r for r in emulator.request_log if r.method == "GET" and r.key == key]


@pytest.fixture
def client(emulator) -> CosS3Client:
    return CosS3Client(CosConfig(**emulator.sdk_config()))


@pytest.fixture
def rng() -> random.Random:
    return random.Random(1234)


@pytest.mark.parametrize("size", [0, 1, MIB - 1, MIB, MIB + 1, 2 * MIB + 17, 7 * MIB + 3])
def test_sizes_around_every_boundary(emulator, client, tmp_path, rng, size):
    data = rng.randbytes(size)
    emulator.put("obj", data)
    dest = tmp_path / "out.bin"
    client.download_file(emulator.bucket, "obj", str(dest), PartSize=1, EnableCRC=True)
    assert dest.read_bytes() == data
    assert leftovers(tmp_path) == []
    requests = gets(emulator, "obj")
    if size <= MIB:
        assert len(requests) == 1 and requests[0].range is None  # one plain GET, as the SDK
    else:
        ranges = sorted(r.range for r in requests)
        expected = sorted(f"bytes={o}-{min(o + MIB, size) - 1}" for o in range(0, size, MIB))
        assert ranges == expected


def test_every_part_is_pinned_to_the_etag_from_head(emulator, client, tmp_path, rng):
    info = emulator.put("obj", rng.randbytes(3 * MIB))
    client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), PartSize=1)
    requests = gets(emulator, "obj")
    assert len(requests) == 3
    assert all(r.headers.get("if-match") == info.etag for r in requests)


def test_replaces_existing_destination_only_when_complete(emulator, client, tmp_path, rng):
    data = rng.randbytes(2 * MIB + 5)
    emulator.put("obj", data)
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old contents")
    emulator.add_fault(Fault(kind="flip", key="obj", offset=MIB + 7))
    with pytest.raises(CosClientError, match="CRC-64"):
        client.download_file(emulator.bucket, "obj", str(dest), PartSize=1)
    assert dest.read_bytes() == b"old contents"
    assert leftovers(tmp_path) == []
    client.download_file(emulator.bucket, "obj", str(dest), PartSize=1)
    assert dest.read_bytes() == data


def test_flipped_byte_in_a_small_object_is_caught_too(emulator, client, tmp_path, rng):
    emulator.put("small", rng.randbytes(1000))
    emulator.add_fault(Fault(kind="flip", key="small", offset=999))
    with pytest.raises(CosClientError, match="CRC-64"):
        client.download_file(emulator.bucket, "small", str(tmp_path / "s"))
    assert list(tmp_path.iterdir()) == []


def test_connection_drops_resume_mid_part(emulator, client, tmp_path, rng):
    data = rng.randbytes(4 * MIB)
    emulator.put("obj", data)
    emulator.add_fault(Fault(kind="drop", key="obj", range_start=MIB, after_bytes=300_000))
    emulator.add_fault(Fault(kind="drop", key="obj", range_start=3 * MIB, after_bytes=10))
    dest = tmp_path / "o"
    client.download_file(emulator.bucket, "obj", str(dest), PartSize=1, EnableCRC=True)
    assert dest.read_bytes() == data
    ranges = [r.range for r in gets(emulator, "obj")]
    # The retried parts continue from the first byte not yet written, not from the part start.
    assert f"bytes={MIB + 300_000}-{2 * MIB - 1}" in ranges
    assert f"bytes={3 * MIB + 10}-{4 * MIB - 1}" in ranges
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("direct_io", [True, False])
def test_parts_of_many_stages_land_exactly_through_drops_with_and_without_direct_io(emulator, client, tmp_path,
                                                                                   rng, direct_io):
    # 8 MiB parts are 8 stages, which DirectIO=True writes with O_DIRECT as far as the disk takes
    # them; a drop mid-part leaves the retry at an odd offset, whose stages go through the page cache.
    data = rng.randbytes(40 * MIB + 123)
    emulator.put("obj", data)
    emulator.add_fault(Fault(kind="drop", key="obj", range_start=8 * MIB, after_bytes=5 * MIB + 77))
    dest = tmp_path / "o"
    client.download_file(emulator.bucket, "obj", str(dest), PartSize=8, EnableCRC=True, DirectIO=direct_io)
    assert dest.read_bytes() == data
    assert f"bytes={13 * MIB + 77}-{16 * MIB - 1}" in [r.range for r in gets(emulator, "obj")]
    assert leftovers(tmp_path) == []


def test_a_flipped_byte_in_a_part_written_direct_is_caught(emulator, client, tmp_path, rng):
    emulator.put("obj", rng.randbytes(24 * MIB))
    emulator.add_fault(Fault(kind="flip", key="obj", offset=MIB + 5))
    with pytest.raises(CosClientError, match="CRC-64"):
        client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), PartSize=12, DirectIO=True)
    assert list(tmp_path.iterdir()) == []


def test_small_object_resumes_with_a_range_after_a_drop(emulator, client, tmp_path, rng):
    data = rng.randbytes(500_000)
    emulator.put("small", data)
    emulator.add_fault(Fault(kind="drop", key="small", after_bytes=123_456))
    client.download_file(emulator.bucket, "small", str(tmp_path / "s"))
    assert (tmp_path / "s").read_bytes() == data
    assert [r.range for r in gets(emulator, "small")] == [None, f"bytes=123456-{len(data) - 1}"]


def test_503_bursts_with_retry_after_are_retried(emulator, client, tmp_path, rng):
    data = rng.randbytes(2 * MIB)
    emulator.put("obj", data)
    fid = emulator.add_fault(Fault(kind="status", key="obj", method="GET", status=503, retry_after=0, times=3))
    emulator.add_fault(Fault(kind="status", key="obj", method="GET", status=500, nth=4))
    client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), PartSize=1)
    assert (tmp_path / "o").read_bytes() == data
    assert emulator.fault_fired(fid) == 3
    statuses = [r.status for r in gets(emulator, "obj")]
    assert statuses.count(503) == 3 and statuses.count(500) == 1 and statuses.count(206) == 2


def test_retry_after_is_honoured(emulator, client, tmp_path, rng):
    emulator.put("obj", rng.randbytes(1000))
    emulator.add_fault(Fault(kind="status", key="obj", method="GET", status=503, retry_after=1))
    client.download_file(emulator.bucket, "obj", str(tmp_path / "o"))
    first, second = gets(emulator, "obj")
    assert second.started - first.started >= 0.9


def test_a_4xx_is_final_and_leaves_nothing(emulator, client, tmp_path, rng):
    emulator.put("obj", rng.randbytes(3 * MIB))
    emulator.add_fault(Fault(kind="status", key="obj", method="GET", status=403, code="AccessDenied", nth=2))
    with pytest.raises(CosServiceError) as info:
        client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), PartSize=1, MAXThread=1)
    assert info.value.get_status_code() == 403
    assert info.value.get_error_code() == "AccessDenied"
    assert leftovers(tmp_path) == [] and not (tmp_path / "o").exists()


def test_stalled_connection_is_aborted_and_retried(emulator, tmp_path, rng):
    data = rng.randbytes(2 * MIB)
    emulator.put("obj", data)
    emulator.add_fault(Fault(kind="stall", key="obj", range_start=MIB, after_bytes=1000, seconds=30))
    client = CosS3Client(CosConfig(**emulator.sdk_config(Timeout=1)))
    started = time.monotonic()
    client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), PartSize=1)
    assert time.monotonic() - started < 20  # the stall (30 s) was cut short by the Timeout
    assert (tmp_path / "o").read_bytes() == data
    assert f"bytes={MIB + 1000}-{2 * MIB - 1}" in [r.range for r in gets(emulator, "obj")]


def test_whole_body_answer_to_a_ranged_get_is_refused(emulator, client, tmp_path, rng):
    emulator.put("obj", rng.randbytes(3 * MIB))
    emulator.add_fault(Fault(kind="full200", key="obj", times=None))
    with pytest.raises(CosClientError, match="200"):
        client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), PartSize=1)
    assert leftovers(tmp_path) == [] and not (tmp_path / "o").exists()


def test_object_replaced_mid_download_is_never_mixed(emulator, client, tmp_path, rng):
    emulator.put("obj", rng.randbytes(4 * MIB))
    emulator.add_fault(Fault(kind="replace", key="obj", method="GET", nth=2, new_data=rng.randbytes(4 * MIB)))
    dest = tmp_path / "o"
    dest.write_bytes(b"keep me")
    with pytest.raises(CosClientError, match="changed"):
        client.download_file(emulator.bucket, "obj", str(dest), PartSize=1, MAXThread=1)
    assert dest.read_bytes() == b"keep me"
    assert leftovers(tmp_path) == []
    assert any(r.status == 412 for r in gets(emulator, "obj"))


def test_conditions_are_checked_by_head(emulator, client, tmp_path, rng):
    info = emulator.put("obj", rng.randbytes(100))
    with pytest.raises(CosServiceError) as err:
        client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), IfMatch='"0000"')
    assert err.value.get_status_code() == 412
    with pytest.raises(CosServiceError) as err:
        client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), IfNoneMatch=info.etag)
    assert err.value.get_status_code() == 304
    client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), IfMatch=info.etag)
    assert (tmp_path / "o").stat().st_size == 100


def test_missing_object_and_bucket(emulator, client, tmp_path):
    with pytest.raises(CosServiceError) as err:
        client.download_file(emulator.bucket, "absent", str(tmp_path / "o"))
    assert err.value.get_status_code() == 404
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"PartSize": 0}, "PartSize"),
    ({"MAXThread": 0}, "MAXThread"),
    ({"MAXThread": "5"}, "MAXThread"),
    ({"TrafficLimit": "100"}, "TrafficLimit"),
    ({"TrafficLimit": "9999999999"}, "TrafficLimit"),
    ({"Range": "bytes=0-9"}, "Range"),
    ({"NoSuchOption": 1}, "NoSuchOption"),
    ({"progress_callback": 5}, "progress_callback"),
])
def test_bad_arguments_fail_before_any_request(emulator, client, tmp_path, kwargs, message):
    emulator.put("obj", b"x")
    with pytest.raises(CosClientError, match=message):
        client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), **kwargs)
    assert emulator.request_log == []


def test_destination_folder_must_exist(emulator, client, tmp_path):
    emulator.put("obj", b"abc")
    with pytest.raises(CosClientError, match="does not exist"):
        client.download_file(emulator.bucket, "obj", str(tmp_path / "no" / "such" / "o"))


def test_no_crc_header_with_enable_crc_warns_but_publishes(emulator, client, tmp_path, rng):
    data = rng.randbytes(2 * MIB)
    emulator.put("old", data, with_crc=False)
    with pytest.warns(UnverifiedDownloadWarning, match="x-cos-hash-crc64ecma"):
        client.download_file(emulator.bucket, "old", str(tmp_path / "o"), PartSize=1, EnableCRC=True)
    assert (tmp_path / "o").read_bytes() == data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.download_file(emulator.bucket, "old", str(tmp_path / "o2"), PartSize=1)


def test_progress_is_monotonic_and_ends_at_total(emulator, client, tmp_path, rng):
    size = 6 * MIB + 11
    emulator.put("obj", rng.randbytes(size))
    emulator.add_fault(Fault(kind="drop", key="obj", range_start=2 * MIB, after_bytes=5000))
    seen: list[tuple[int, int]] = []
    client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), PartSize=1,
                         progress_callback=lambda done, total: seen.append((done, total)))
    done = [d for d, _ in seen]
    assert all(total == size for _, total in seen)
    assert done == sorted(done) and done[0] == 0 and done[-1] == size


def test_maxthread_caps_concurrent_connections(emulator, client, tmp_path, rng):
    emulator.put("obj", rng.randbytes(12 * MIB))
    # Slow every part a little so that transfers overlap and the cap is what limits them.
    emulator.add_fault(Fault(kind="slow", key="obj", method="GET", rate=40 * MIB, times=None))
    client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), PartSize=1, MAXThread=3)
    requests = gets(emulator, "obj")
    assert len({r.conn_id for r in requests}) <= 3
    events = sorted([(r.started, 1) for r in requests] + [(r.ended, -1) for r in requests])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert 2 <= peak <= 3


def test_traffic_limit_is_sent_on_every_part_and_paces(emulator, client, tmp_path, rng):
    size = 3 * MIB // 2
    emulator.put("obj", rng.randbytes(size))
    limit = 8 * MIB  # bit/s: 1 MiB/s per connection
    started = time.monotonic()
    client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), PartSize=1, MAXThread=2,
                         TrafficLimit=str(limit))
    elapsed = time.monotonic() - started
    requests = gets(emulator, "obj")
    assert [r.headers.get("x-cos-traffic-limit") for r in requests] == [str(limit)] * 2
    # The 1 MiB part at 1 MiB/s cannot take less than about a second.
    assert elapsed >= 0.8


def test_concurrent_downloads_to_one_destination_do_not_mix(emulator, tmp_path, rng):
    data = rng.randbytes(4 * MIB)
    emulator.put("obj", data)
    emulator.add_fault(Fault(kind="slow", key="obj", method="GET", rate=4 * MIB, times=None))
    dest = tmp_path / "o"
    child = _spawn_download(emulator, dest, part_size=1, max_thread=2)
    _wait_for(lambda: (tmp_path / ".o.cosfast.lock").exists())
    client = CosS3Client(CosConfig(**emulator.sdk_config()))
    with pytest.raises(CosClientError, match="another download"):
        client.download_file(emulator.bucket, "obj", str(dest), PartSize=1)
    assert child.wait(60) == 0, child.stderr.read()
    assert dest.read_bytes() == data
    assert leftovers(tmp_path) == []


def test_sigkilled_download_resumes_with_only_the_missing_parts(emulator, tmp_path, rng):
    size = 8 * MIB
    data = rng.randbytes(size)
    emulator.put("obj", data)
    # Parts from 4 MiB on hang, so the child finishes parts 0-3 and is killed while waiting.
    for start in (4 * MIB, 5 * MIB):
        emulator.add_fault(Fault(kind="stall", key="obj", range_start=start, seconds=60, times=None))
    dest = tmp_path / "o"
    child = _spawn_download(emulator, dest, part_size=1, max_thread=2)
    record_path = tmp_path / ".o.cosfast.resume"

    def four_parts_recorded() -> bool:
        try:
            record = ResumeRecord.load(str(record_path))
        except Exception:
            return False
        return record is not None and len(record.parts) >= 4

    _wait_for(four_parts_recorded)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    assert not dest.exists()
    recorded = set(ResumeRecord.load(str(record_path)).parts)
    emulator.clear_faults()
    emulator.clear_log()
    CosS3Client(CosConfig(**emulator.sdk_config())).download_file(
        emulator.bucket, "obj", str(dest), PartSize=1, EnableCRC=True)
    assert dest.read_bytes() == data
    fetched = {int(r.range.split("=")[1].split("-")[0]) // MIB for r in gets(emulator, "obj")}
    assert fetched == set(range(8)) - recorded
    assert leftovers(tmp_path) == []


def test_corrupt_record_is_discarded_and_everything_fetched(emulator, client, tmp_path, rng):
    data = rng.randbytes(3 * MIB)
    emulator.put("obj", data)
    (tmp_path / ".o.cosfast.resume").write_bytes(b"cosfast-resume 1 0000\n{torn")
    (tmp_path / ".o.cosfast.tmp").write_bytes(b"junk")
    client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), PartSize=1)
    assert (tmp_path / "o").read_bytes() == data
    assert len(gets(emulator, "obj")) == 3
    assert leftovers(tmp_path) == []


def fail_on_the_network_at_the_last_part(emulator, client: CosS3Client, dest: Path) -> None:
    """Downloads the 4 MiB "obj" in 1 MiB parts while every request for its last part is cut:
    the call fails after its retries and keeps the finished parts for the next one."""
    emulator.add_fault(Fault(kind="drop", key="obj", range_start=3 * MIB, after_bytes=0, times=None))
    from cosfast import download_file as bridge
    original = bridge.MIN_PART_ATTEMPTS
    bridge.MIN_PART_ATTEMPTS = 2  # keep the test short: two attempts per part
    try:
        with pytest.raises(CosClientError, match="resume"):
            client.download_file(emulator.bucket, "obj", str(dest), PartSize=1, MAXThread=1)
    finally:
        bridge.MIN_PART_ATTEMPTS = original


def test_network_failure_keeps_the_parts_for_the_next_call(emulator, tmp_path, rng):
    data = rng.randbytes(4 * MIB)
    emulator.put("obj", data)
    client = CosS3Client(CosConfig(**emulator.sdk_config()), retry=0)
    fail_on_the_network_at_the_last_part(emulator, client, tmp_path / "o")
    assert leftovers(tmp_path) == [".o.cosfast.resume", ".o.cosfast.tmp"]
    # A record whose part bytes were damaged on disk loses that part, nothing else.
    with open(tmp_path / ".o.cosfast.tmp", "r+b") as f:
        f.seek(10)
        f.write(b"\xff")
    emulator.clear_faults()
    emulator.clear_log()
    client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), PartSize=1)
    assert (tmp_path / "o").read_bytes() == data
    assert sorted(r.range for r in gets(emulator, "obj")) == [
        f"bytes=0-{MIB - 1}", f"bytes={3 * MIB}-{4 * MIB - 1}"]
    assert leftovers(tmp_path) == []


def test_a_resumed_download_whose_crc_fails_is_fetched_again_from_its_start(emulator, tmp_path, rng, caplog):
    # The first call keeps part 1 with a byte flipped in transit: its recorded CRC is that of the
    # bytes received, so only the object's CRC can tell, once part 3 arrives in the next call.
    data = rng.randbytes(4 * MIB)
    emulator.put("obj", data)
    emulator.add_fault(Fault(kind="flip", key="obj", offset=MIB + 5))
    client = CosS3Client(CosConfig(**emulator.sdk_config()), retry=0)
    fail_on_the_network_at_the_last_part(emulator, client, tmp_path / "o")
    emulator.clear_faults()
    emulator.clear_log()
    progress = []
    with caplog.at_level("WARNING", logger="cosfast"):
        client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), PartSize=1,
                             progress_callback=lambda consumed, total: progress.append(consumed))
    assert (tmp_path / "o").read_bytes() == data
    # Part 3 (the resume), then every part again.
    ranges = [r.range for r in gets(emulator, "obj")]
    assert ranges[0] == f"bytes={3 * MIB}-{4 * MIB - 1}"
    assert sorted(ranges[1:]) == sorted(f"bytes={o}-{o + MIB - 1}" for o in range(0, 4 * MIB, MIB))
    assert "downloaded again" in caplog.text
    assert progress == sorted(progress) and progress[-1] == len(data)
    assert leftovers(tmp_path) == []


def test_a_crc_mismatch_without_resumed_parts_is_not_retried(emulator, client, tmp_path, rng):
    emulator.put("obj", rng.randbytes(3 * MIB))
    emulator.add_fault(Fault(kind="flip", key="obj", offset=MIB + 5))
    with pytest.raises(CosClientError, match="CRC-64"):
        client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), PartSize=1)
    assert len(gets(emulator, "obj")) == 3
    assert list(tmp_path.iterdir()) == []


def test_fsync_option_downloads_durably(emulator, client, tmp_path, rng):
    data = rng.randbytes(3 * MIB)
    emulator.put("obj", data)
    emulator.add_fault(Fault(kind="drop", key="obj", range_start=MIB, after_bytes=1000))
    client.download_file(emulator.bucket, "obj", str(tmp_path / "o"), PartSize=1, Fsync=True)
    assert (tmp_path / "o").read_bytes() == data
    assert leftovers(tmp_path) == []


def test_dump_record_dir_holds_the_record(emulator, tmp_path, rng):
    data = rng.randbytes(2 * MIB)
    emulator.put("obj", data)
    emulator.add_fault(Fault(kind="drop", key="obj", range_start=MIB, after_bytes=0, times=None))
    client = CosS3Client(CosConfig(**emulator.sdk_config()), retry=0)
    from cosfast import download_file as bridge
    original = bridge.MIN_PART_ATTEMPTS
    bridge.MIN_PART_ATTEMPTS = 1
    records = tmp_path / "records"
    out = tmp_path / "out"
    out.mkdir()
    try:
        with pytest.raises(CosClientError):
            client.download_file(emulator.bucket, "obj", str(out / "o"), PartSize=1, DumpRecordDir=str(records))
    finally:
        bridge.MIN_PART_ATTEMPTS = original
    assert len(list(records.iterdir())) == 1
    emulator.clear_faults()
    client.download_file(emulator.bucket, "obj", str(out / "o"), PartSize=1, DumpRecordDir=str(records))
    assert (out / "o").read_bytes() == data
    assert list(records.iterdir()) == [] and leftovers(out) == []


def _download_with_file_size_limit(emulator, key: str, dest: Path, limit: int, **kwargs) -> str:
    """download_file in a process whose files cannot grow past ``limit`` bytes (RLIMIT_FSIZE: the
    write fails as on a full disk); returns the CosClientError's text (the process must raise one)."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        from cosfast import CosConfig, CosS3Client, CosClientError
        client = CosS3Client(CosConfig(**{emulator.sdk_config()!r}))
        try:
            client.download_file({emulator.bucket!r}, {key!r}, {str(dest)!r}, **{kwargs!r})
        except CosClientError as e:
            print("ERROR", e)
            sys.exit(3)
    """)
    result = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": REPO_ROOT},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    return result.stdout


def test_full_disk_fails_before_the_first_get(emulator, tmp_path, rng):
    emulator.put("obj", rng.randbytes(3 * MIB))
    assert "File too large" in _download_with_file_size_limit(emulator, "obj", tmp_path / "o", MIB, PartSize=1)
    assert gets(emulator, "obj") == []  # only the HEAD went out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("size,limit,preallocated", [
    (3 * MIB, MIB, True),  # one GET, but more than a stage: preallocated, so the disk fails first
    (600 * 1024, 256 * 1024, False),  # fits one stage: sized sparse, written once it has arrived
], ids=["single-get-preallocated", "one-stage-object"])
def test_a_full_disk_under_a_single_get_is_a_clear_error_and_leaves_nothing(emulator, tmp_path, rng, size, limit,
                                                                            preallocated):
    emulator.put("small", rng.randbytes(size))
    (tmp_path / "small").write_bytes(b"the old copy")
    assert "File too large" in _download_with_file_size_limit(emulator, "small", tmp_path / "small", limit)
    if preallocated:
        assert gets(emulator, "small") == []
    assert [p.name for p in tmp_path.iterdir()] == ["small"]
    assert (tmp_path / "small").read_bytes() == b"the old copy"


def test_official_sdk_and_cosfast_download_identical_bytes(emulator, tmp_path, rng):
    import qcloud_cos

    data = rng.randbytes(3 * MIB + 1)
    emulator.put("dir/obj", data)
    sdk = qcloud_cos.CosS3Client(qcloud_cos.CosConfig(**emulator.sdk_config()))
    sdk.download_file(emulator.bucket, "dir/obj", str(tmp_path / "sdk"), PartSize=1, EnableCRC=True)
    CosS3Client(CosConfig(**emulator.sdk_config())).download_file(
        emulator.bucket, "dir/obj", str(tmp_path / "cosfast"), PartSize=1, EnableCRC=True)
    assert (tmp_path / "sdk").read_bytes() == (tmp_path / "cosfast").read_bytes() == data
    assert crc64(data) == emulator.head_object(emulator.bucket, "dir/obj").crc64


def _spawn_download(emulator, dest: Path, *, part_size: int, max_thread: int) -> subprocess.Popen:
    script = textwrap.dedent(f"""
        from cosfast import CosConfig, CosS3Client
        client = CosS3Client(CosConfig(**{emulator.sdk_config()!r}))
        client.download_file({emulator.bucket!r}, "obj", {str(dest)!r}, PartSize={part_size},
                             MAXThread={max_thread})
    """)
    return subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": REPO_ROOT},
                            stderr=subprocess.PIPE, text=True)


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)
