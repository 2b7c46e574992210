"""The download_dir part of the soak (bench/soak.py): prefixes of tens of objects, some with
faults, some with a stale local file in the way, downloaded with download_dir.

Every object must end either downloaded with exactly its bytes, or listed in the summary's
failures with its local path untouched (the stale file still there, or nothing); objects whose
faults are all recoverable must be downloaded; nothing else may appear in the folder."""
from __future__ import annotations

import random
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench import leakcheck
from cosfast import CosClientError, CosS3Client, CosServiceError
from cosfast.emulator import Emulator, Fault
from cosfast.transfer.plan import choose_part_size

MIB = 1024 * 1024
# Fired faults after which an object may rightly fail.
FATAL_FIRED = frozenset({"flip", "full200"})


@dataclass(frozen=True)
class BatchPlan:
    index: int
    prefix: str
    objects: dict  # key -> bytes
    faults: tuple
    stale: dict  # relative path -> bytes already in the folder
    part_size: int
    max_thread: int
    enable_crc: bool
    processes: int | None  # download_dir's Processes: None (in this process, which runs threads) or workers

    def describe(self) -> str:
        return (f"batch #{self.index}: {len(self.objects)} objects, {len(self.faults)} faults, "
                f"{len(self.stale)} stale files, PartSize={self.part_size} MAXThread={self.max_thread} "
                f"Processes={self.processes}")


def draw_batch(rng: random.Random, index: int, max_objects: int) -> BatchPlan:
    prefix = f"batch{index}/"
    objects: dict = {}
    faults: list = []
    stale: dict = {}
    part_size = rng.randint(1, 2)
    for i in range(rng.randint(max(2, max_objects // 3), max_objects)):
        relative = f"d{i % 4}/obj{i}" if i % 3 else f"obj{i}"
        size = rng.choice([0, rng.randint(1, 4096), rng.randint(1, 3 * MIB // 2), rng.randint(MIB, 5 * MIB // 2)])
        key = prefix + relative
        objects[key] = rng.randbytes(size)
        if rng.random() < 0.2:
            stale[relative] = rng.randbytes(size + rng.randint(1, 9))  # never "unchanged"
        if rng.random() < 0.45:
            faults.append(_draw_fault(rng, key, size, choose_part_size(size, part_size, 10000)))
    return BatchPlan(index=index, prefix=prefix, objects=objects, faults=tuple(f for f in faults if f),
                     stale=stale, part_size=part_size, max_thread=rng.randint(1, 16), enable_crc=rng.random() < 0.5,
                     processes=rng.choice([None, 2, 3]))


def _draw_fault(rng: random.Random, key: str, size: int, part_bytes: int):
    kind = rng.choice(["drop", "burst", "stall", "slow", "flip", "full200"])
    span = max(1, min(size, part_bytes))
    if kind == "drop":
        return Fault(kind="drop", key=key, after_bytes=rng.randrange(span), times=rng.randint(1, 2))
    if kind == "burst":
        return Fault(kind="status", key=key, method="GET", status=rng.choice([500, 503]),
                     retry_after=rng.choice([None, 0]), times=rng.randint(1, 3))
    if kind == "stall":
        return Fault(kind="stall", key=key, after_bytes=rng.randrange(span), seconds=rng.uniform(1.5, 3.0))
    if kind == "slow":
        return Fault(kind="slow", key=key, method="GET", rate=rng.randint(2, 8) * MIB // 2, times=2)
    if kind == "flip" and size:
        return Fault(kind="flip", key=key, offset=rng.randrange(size))
    if kind == "full200":
        return Fault(kind="full200", key=key)
    return None


def run_batch(emu: Emulator, bucket: str, client: CosS3Client, workdir: Path, plan: BatchPlan, tally) -> None:
    """Runs one batch plan and adds its counts and problems to ``tally`` (a soak Tally)."""
    for key, data in plan.objects.items():
        emu.put_object(bucket, key, data)
    folder = workdir / f"batch{plan.index}"
    for relative, data in plan.stale.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(data)
    emu.clear_log()
    for fault in plan.faults:
        emu.add_fault(fault)
    problems: list = []
    try:
        summary = client.download_dir(bucket, plan.prefix, str(folder), PartSize=plan.part_size,
                                      MAXThread=plan.max_thread, EnableCRC=plan.enable_crc, Processes=plan.processes)
    except (CosClientError, CosServiceError) as exc:
        summary = None
        problems.append(f"download_dir raised {type(exc).__name__}: {exc}")
    emu.clear_faults()
    records = emu.request_log
    fired = _count(records, plan, tally)
    if summary is not None:
        problems += _judge(plan, folder, summary, fired, tally)
    tally.batches += 1
    tally.batch_objects += len(plan.objects)
    if problems:
        tally.problems.append(f"{plan.describe()}: {'; '.join(problems)}")
    for key in plan.objects:
        emu.delete_object(bucket, key)
    shutil.rmtree(folder, ignore_errors=True)


def _count(records: list, plan: BatchPlan, tally) -> dict:
    """Requests, retries and fired faults; returns key -> kinds fired on it."""
    tally.requests += len(records)
    fired: dict = {}
    gets: dict = {}
    for record in records:
        if record.key not in plan.objects:
            continue  # the listing
        for kind in record.faults:
            name = f"status {record.status}" if kind == "status" else kind
            tally.fired[name] += 1
            fired.setdefault(record.key, set()).add(name)
        if record.method == "GET":
            tally.bytes_served += record.bytes_sent
            gets.setdefault(record.key, []).append(record)
    for key, requests in gets.items():
        part_bytes = choose_part_size(len(plan.objects[key]), plan.part_size, 10000)
        starts = {int(r.range.split("=")[1].split("-")[0]) // part_bytes if r.range else 0 for r in requests}
        tally.get_retries += len(requests) - len(starts)
    return fired


def _judge(plan: BatchPlan, folder: Path, summary, fired: dict, tally) -> list:
    problems = []
    failed = dict(summary.failed)
    outcomes: Counter = Counter()
    for key, data in plan.objects.items():
        relative = key[len(plan.prefix):]
        path = folder / relative
        if key in failed:
            before = plan.stale.get(relative)
            untouched = path.read_bytes() == before if before is not None else not path.exists()
            if not untouched:
                tally.bytes_lost += max(1, len(before or b""))
                problems.append(f"{key}: failed and its local path changed")
            if not failed[key]:
                problems.append(f"{key}: failed without a reason")
            if not fired.get(key, set()) & FATAL_FIRED:
                problems.append(f"{key}: failed although every fault that fired was recoverable: {failed[key]}")
            outcomes["download_dir: clear failure, path untouched"] += 1
        elif path.is_file() and path.read_bytes() == data:
            outcomes["download_dir: verified"] += 1
            tally.bytes_verified += len(data)
        else:
            tally.bytes_lost += max(1, len(data))
            problems.append(f"{key}: reported downloaded but the file is not its bytes")
    expected = {key[len(plan.prefix):] for key in plan.objects}
    present = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    strays = sorted(present - expected)
    if strays:
        problems.append(f"unexpected files in the folder: {strays[:5]}")
    if leakcheck.cosfast_leftovers(folder):
        problems.append(f"left {leakcheck.cosfast_leftovers(folder)[:5]}")
    if summary.downloaded + len(failed) != len(plan.objects):
        problems.append(f"summary counts {summary.downloaded} downloaded + {len(failed)} failed "
                        f"for {len(plan.objects)} objects")
    tally.outcomes.update(outcomes)
    return problems
