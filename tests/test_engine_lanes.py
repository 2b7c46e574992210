"""The engine's lanes: several CurlMulti loops in their own threads sharing one job source.

What must hold whatever the lane count: every part lands once with the right bytes, the owners
and callbacks are never entered by two lanes at once, the connection cap is shared (never
multiplied), and one lane's failure stops the others and reaches the caller."""
from __future__ import annotations

import dataclasses
import random
import threading
import time

import pytest

from cosfast import CosConfig, CosS3Client
from cosfast.crc64 import crc64
from cosfast.download_file import engine_options, get_template, head_identity, request_builder
from cosfast.emulator import Fault
from cosfast.partwriter import DEFAULT_STAGE_SIZE, PartSink, TempFile
from cosfast.transfer.engine import EngineOptions, RangeJob, TransferEngine
from cosfast.transfer.plan import split

MIB = 1024 * 1024


class RecordingOwner:
    """A JobOwner that fails the test if two lanes ever call it at once, and notes which thread
    reported each part."""

    def __init__(self, fail_at_part: int | None = None) -> None:
        self.failed = None
        self.done: dict[int, tuple[int, str]] = {}  # part index -> (crc, thread name)
        self.overlaps = 0
        self._inside = False
        self._fail_at_part = fail_at_part

    def part_done(self, job: RangeJob) -> None:
        if self._inside:
            self.overlaps += 1
        self._inside = True
        try:
            time.sleep(0.002)  # widen the window in which a second, unguarded lane would enter
            if job.part.index == self._fail_at_part:
                raise RuntimeError(f"owner refused part {job.part.index}")
            self.done[job.part.index] = (job.sink.crc, threading.current_thread().name)
        finally:
            self._inside = False

    def part_failed(self, job: RangeJob, error: BaseException) -> None:
        self.failed = error


@pytest.fixture
def rng() -> random.Random:
    return random.Random(4321)


@pytest.fixture
def client(emulator):
    return CosS3Client(CosConfig(**emulator.sdk_config()))


def part_jobs(client, emulator, key: str, dest, owner, part_size: int) -> tuple[list[RangeJob], TempFile]:
    identity = head_identity(client, emulator.bucket, key, {}, {})
    build = request_builder(get_template(client, emulator.bucket, {}, {}), identity)
    temp = TempFile(str(dest), identity.size)
    jobs = [RangeJob(part=part, object_size=identity.size,
                     sink=PartSink(temp, part.offset, part.length, stage_size=DEFAULT_STAGE_SIZE),
                     build_request=build, owner=owner)
            for part in split(identity.size, part_size)]
    return jobs, temp


def lanes_engine(client, *, connections: int, lanes: int) -> TransferEngine:
    return TransferEngine(dataclasses.replace(engine_options(client, connections), lanes=lanes))


def test_lane_count_follows_the_connection_cap_and_the_cpus():
    assert EngineOptions(max_connections=1, lanes=4).lane_count() == 1
    assert EngineOptions(max_connections=5, lanes=3).lane_count() == 3
    assert 1 <= EngineOptions(max_connections=16).lane_count() <= 4
    assert EngineOptions(max_connections=1).lane_count() == 1


def test_two_lanes_fetch_every_part_once_and_report_one_at_a_time(emulator, client, tmp_path, rng):
    data = rng.randbytes(24 * MIB + 123)
    emulator.put("obj", data)
    # Slow parts keep both lanes busy at the same time, so their reports can collide.
    emulator.add_fault(Fault(kind="slow", key="obj", method="GET", rate=64 * MIB, times=None))
    owner = RecordingOwner()
    jobs, temp = part_jobs(client, emulator, "obj", tmp_path / "o", owner, MIB)
    progress: list[int] = []
    with lanes_engine(client, connections=4, lanes=2) as engine:
        assert engine.lanes == 2
        engine.run(jobs, on_progress=progress.append)
    temp.close()

    assert owner.overlaps == 0
    assert sorted(owner.done) == list(range(len(jobs)))
    lanes_used = {name for _, name in owner.done.values()}
    assert lanes_used == {threading.current_thread().name, "cosfast-lane-1"}
    assert (tmp_path / "o").read_bytes() == data
    assert [owner.done[j.part.index][0] for j in jobs] == [crc64(data[j.part.offset:j.part.end]) for j in jobs]
    assert all(delta > 0 for delta in progress) and sum(progress) == len(data)
    gets = [r for r in emulator.request_log if r.method == "GET"]
    assert len(gets) == len(jobs)  # no part fetched twice
    assert len({r.conn_id for r in gets}) <= 4  # the lanes share the cap: 2 + 2 connections


def test_a_failing_lane_stops_the_others_and_the_error_reaches_the_caller(emulator, client, tmp_path, rng):
    emulator.put("obj", rng.randbytes(32 * MIB))
    emulator.add_fault(Fault(kind="slow", key="obj", method="GET", rate=2 * MIB, times=None))
    owner = RecordingOwner(fail_at_part=3)
    jobs, temp = part_jobs(client, emulator, "obj", tmp_path / "o", owner, MIB)
    before = set(threading.enumerate())
    with lanes_engine(client, connections=4, lanes=2) as engine:
        with pytest.raises(RuntimeError, match="owner refused part 3"):
            engine.run(jobs)
        started_in_first_run = len([r for r in emulator.request_log if r.method == "GET"])
        # The engine is still usable: the next run gets fresh lanes' threads.
        retry_owner = RecordingOwner()
        for job in jobs:
            job.owner = retry_owner
        engine.run([job for job in jobs if not job.sink.done][:2])
    temp.close()
    assert set(threading.enumerate()) == before  # no lane thread outlived its run
    # Part 3 fails within the first round of transfers; lanes that went on would start all 32.
    assert started_in_first_run < 12
    assert len(owner.done) < len(jobs)
    assert len(retry_owner.done) == 2


def test_parts_from_a_generator_are_shared_between_lanes(emulator, client, tmp_path, rng):
    data = rng.randbytes(10 * MIB)
    emulator.put("obj", data)
    owner = RecordingOwner()
    jobs, temp = part_jobs(client, emulator, "obj", tmp_path / "o", owner, MIB)
    handed_out: list[int] = []

    def source():
        for job in jobs:
            handed_out.append(job.part.index)
            yield job

    with lanes_engine(client, connections=2, lanes=2) as engine:
        engine.run(source())
    temp.close()
    assert handed_out == list(range(len(jobs)))  # each job taken once, in order
    assert sorted(owner.done) == handed_out
    assert (tmp_path / "o").read_bytes() == data


class BarrierOpener:
    """An opener whose open() returns only once ``parties`` openers are inside open() at the same
    time: if lanes opened objects one at a time (under the engine's lock), it would time out."""

    def __init__(self, barrier: threading.Barrier, jobs: list[RangeJob], log: list) -> None:
        self._barrier, self._jobs, self._log = barrier, jobs, log

    def open(self) -> list[RangeJob]:
        self._barrier.wait(timeout=10)
        return self._jobs

    def opened(self, jobs: list[RangeJob], error) -> list[RangeJob]:
        self._log.append((len(jobs), error))
        return jobs


def test_lanes_open_objects_at_the_same_time(emulator, client, tmp_path, rng):
    data = rng.randbytes(4 * MIB)
    emulator.put("obj", data)
    owner = RecordingOwner()
    jobs, temp = part_jobs(client, emulator, "obj", tmp_path / "o", owner, MIB)
    barrier = threading.Barrier(2)
    log: list = []
    openers = [BarrierOpener(barrier, jobs[:2], log), BarrierOpener(barrier, jobs[2:], log)]
    with lanes_engine(client, connections=2, lanes=2) as engine:
        engine.run(iter(openers))
    temp.close()
    assert log == [(2, None), (2, None)]
    assert sorted(owner.done) == [0, 1, 2, 3]
    assert (tmp_path / "o").read_bytes() == data


def test_an_opener_that_fails_is_told_and_the_run_goes_on(emulator, client, tmp_path, rng):
    emulator.put("obj", rng.randbytes(2 * MIB))
    owner = RecordingOwner()
    jobs, temp = part_jobs(client, emulator, "obj", tmp_path / "o", owner, MIB)
    log: list = []

    class Failing(BarrierOpener):
        def open(self):
            raise OSError(28, "No space left on device")

    openers = [Failing(threading.Barrier(1), [], log), BarrierOpener(threading.Barrier(1), jobs, log)]
    with lanes_engine(client, connections=2, lanes=2) as engine:
        engine.run(iter(openers))
    temp.close()
    assert isinstance(log[0][1], OSError) and log[0][0] == 0
    assert log[1] == (2, None)
    assert sorted(owner.done) == [0, 1]
