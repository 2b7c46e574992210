"""Fault soak for download_file and download_dir: hundreds of downloads through the emulator,
faults drawn at random.

    python3 -m bench.soak            # full: 400 download_file calls, 20 download_dir runs
    python3 -m bench.soak --quick    # CI: 30 calls, 2 download_dir runs, under 30 s
    python3 bench/soak.py --seed 7 --start 123 --downloads 1   # replay one download

Every download must end in one of two ways:

- success, and the destination holds exactly the bytes of the version the download pinned
  (the object as its HEAD saw it: a ``replace`` fault that fired on the HEAD itself makes the
  new version the right one);
- a CosClientError or CosServiceError with a message, and the destination untouched
  (destinations are often pre-seeded with sentinel bytes to check this).

After each download nothing may be left beside the destination, except what download_file
documents: a multi-part download that failed on the network after its retries keeps its temp
file and resume record, and the soak then checks that calling again (faults gone) completes it
fetching exactly the missing bytes. Downloads whose faults are all recoverable (drops, 5xx
bursts shorter than the retry budget, stalls, slow links) must succeed. After the run: file
descriptors, connections to the emulator and RSS are compared with their values after a
warm-up download (RSS after glibc's malloc_trim, so freed buffers do not count). Exit status
0 only if all of that holds; "bytes lost" counts the bytes of
every destination that ended wrong (must be 0).

After the download_file calls come download_dir runs over prefixes of tens of objects with
faults and stale local files (bench/soak_batch.py has their rules).

Traffic goes only to an emulator on 127.0.0.1 in this process. A flipped byte in an object
without a CRC-64 header cannot be detected by any client, so that combination is not drawn.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import random
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script (python3 bench/soak.py): find bench and cosfast
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import leakcheck, soak_batch
from cosfast import CosClientError, CosConfig, CosS3Client, CosServiceError
from cosfast import download_file as bridge
from cosfast.emulator import Emulator, Fault
from cosfast.emulator.requestlog import RequestRecord
from cosfast.transfer.engine import TransferEngine
from cosfast.transfer.plan import choose_part_size
from cosfast.transfer.record import ResumeRecord
from cosfast.transfer.retry import RetryPolicy

MIB = 1024 * 1024
BUCKET = "soak-1250000000"
# Seconds a part may move no byte before it is cut (CosConfig Timeout): stalls are cut short.
CLIENT_TIMEOUT = 1
# Failures a recoverable plan may inflict on one part, below download_file's 8 attempts.
RECOVERABLE_BUDGET = 6
# The facade's HEAD is tried retry + 1 = 4 times: a 5xx burst on it stays below that.
MAX_BURST = 3
# Drawn fault kinds and their weights ("outage": one part fails on every attempt).
KIND_WEIGHTS = {"drop": 3, "burst": 3, "stall": 1, "slow": 2, "flip": 2, "full200": 1,
                "replace": 1.5, "deny": 0.5, "outage": 0.6}
# Fired emulator faults after which a failed download is the right outcome.
FATAL_FIRED = frozenset({"flip", "full200", "replace", "status 403", "status 404"})
# RSS (after malloc_trim) may grow this much over the run (caches, allocator fragmentation);
# more is a leak.
RSS_SLACK = 32 * MIB


@dataclass(frozen=True)
class SoakLimits:
    downloads: int
    batches: int
    batch_objects: int
    seconds: float
    max_requests: int
    max_size: int
    seed: int
    start: int


@dataclass(frozen=True)
class Plan:
    """One download: the object, the call's arguments, the faults, and what the destination
    held before (None: absent)."""

    index: int
    key: str
    data: bytes
    with_crc: bool
    part_size: int
    max_thread: int
    enable_crc: bool
    direct_io: bool | None  # None: the default, direct while the disk keeps up
    record_dir: bool
    sentinel: bytes | None
    faults: tuple
    outage: bool

    @property
    def multipart(self) -> bool:
        return len(self.data) > self.part_size * MIB

    def describe(self) -> str:
        faults = ", ".join(_fault_text(f) for f in self.faults) or "none"
        return (f"#{self.index} size={len(self.data)} PartSize={self.part_size} "
                f"MAXThread={self.max_thread} EnableCRC={self.enable_crc} DirectIO={self.direct_io} crc={self.with_crc} "
                f"record_dir={self.record_dir} sentinel={self.sentinel is not None} "
                f"outage={self.outage} faults=[{faults}]")


def _fault_text(fault: Fault) -> str:
    shown = {k: v for k, v in dataclasses.asdict(fault).items()
             if v is not None and k not in ("kind", "key", "new_data") and v != Fault.__dataclass_fields__[k].default}
    if fault.new_data is not None:
        shown["new_data"] = f"<{len(fault.new_data)} bytes>"
    return fault.kind + str(shown)


# -- drawing plans ---------------------------------------------------------------------------


def draw_size(rng: random.Random, max_size: int) -> int:
    pick = rng.random()
    if pick < 0.12:
        return rng.choice([0, 1, 2, 1000, 65536])
    if pick < 0.45:  # around a part boundary
        return max(0, rng.randint(1, max(1, max_size // MIB)) * MIB + rng.randint(-2, 2))
    return rng.randint(0, max_size)


def draw_plan(rng: random.Random, index: int, max_size: int) -> Plan:
    size = draw_size(rng, max_size)
    with_crc = rng.random() < 0.9
    part_size = rng.randint(1, 2)
    part_bytes = choose_part_size(size, part_size, 10000)
    multipart = size > part_size * MIB
    key = f"soak/{index}/obj-{rng.randrange(1 << 30):x}"
    data = rng.randbytes(size)
    faults, outage = draw_faults(rng, key, data, part_bytes if multipart else None, with_crc)
    return Plan(index=index, key=key, data=data, with_crc=with_crc, part_size=part_size,
                max_thread=rng.randint(1, 8), enable_crc=rng.random() < 0.5,
                direct_io=rng.choice((None, True, False)), record_dir=rng.random() < 0.2,
                sentinel=rng.randbytes(rng.randint(0, 100)) if rng.random() < 0.6 else None,
                faults=tuple(faults), outage=outage)


def draw_faults(rng: random.Random, key: str, data: bytes, part_bytes: int | None,
                with_crc: bool) -> tuple[list, bool]:
    """Up to three faults for one object. ``part_bytes`` is None for a single-GET download."""
    size = len(data)
    starts: list = list(range(0, size, part_bytes)) if part_bytes else []
    span = min(size, part_bytes or size)
    budget = RECOVERABLE_BUDGET
    faults: list = []
    drawn: set = set()
    outage = False
    names = list(KIND_WEIGHTS)
    for kind in rng.choices(names, weights=[KIND_WEIGHTS[n] for n in names], k=rng.choice([0, 1, 1, 2, 2, 3])):
        where = rng.choice(starts + [None])
        times = rng.randint(1, 2)
        if kind in ("drop", "stall", "burst") and budget < MAX_BURST:
            continue
        if kind == "drop":
            faults.append(Fault(kind="drop", key=key, range_start=where, nth=rng.randint(1, 2),
                                times=times, after_bytes=rng.randint(0, max(0, span - 1))))
            budget -= times
        elif kind == "burst":
            if "burst-any" in drawn:  # one burst that may hit the HEAD, so its retries suffice
                continue
            method = rng.choice(["GET", None])
            drawn.add("burst-any" if method is None else "burst")
            times = rng.randint(1, MAX_BURST)
            faults.append(Fault(kind="status", key=key, method=method, status=rng.choice([500, 503]),
                                retry_after=rng.choices([None, 0, 1], weights=[3, 3, 1])[0],
                                nth=rng.randint(1, 3), times=times))
            budget -= times
        elif kind == "stall":
            faults.append(Fault(kind="stall", key=key, range_start=where,
                                after_bytes=rng.randint(0, max(0, span - 1)),
                                seconds=rng.uniform(1.5, 3.0)))
            budget -= 1
        elif kind == "slow":
            faults.append(Fault(kind="slow", key=key, method="GET", rate=rng.randint(2, 16) * MIB // 2,
                                times=rng.randint(1, 3)))
        elif kind == "flip" and with_crc and size:
            faults.append(Fault(kind="flip", key=key, offset=rng.randrange(size)))
        elif kind == "full200":
            faults.append(Fault(kind="full200", key=key, range_start=where, nth=rng.randint(1, 2)))
        elif kind == "replace" and kind not in drawn:
            drawn.add(kind)
            new_data = None if rng.random() < 0.5 else rng.randbytes(rng.randint(0, size + MIB))
            faults.append(Fault(kind="replace", key=key, method=rng.choice(["GET", None]),
                                nth=rng.randint(1, 3), new_data=new_data))
        elif kind == "deny":
            faults.append(Fault(kind="status", key=key, method="GET", status=rng.choice([403, 404]),
                                nth=rng.randint(1, 3)))
        elif kind == "outage" and not outage:
            outage = True
            faults.append(Fault(kind="drop", key=key, range_start=where, times=None,
                                after_bytes=rng.randint(0, max(0, span - 1))))
    return faults, outage


# -- running one download --------------------------------------------------------------------


@dataclass
class Tally:
    downloads: int = 0
    batches: int = 0
    batch_objects: int = 0
    outcomes: Counter = field(default_factory=Counter)
    fired: Counter = field(default_factory=Counter)
    requests: int = 0
    get_retries: int = 0
    head_retries: int = 0
    bytes_verified: int = 0
    bytes_lost: int = 0
    bytes_served: int = 0
    problems: list = field(default_factory=list)


class LogText(logging.Handler):
    """Keeps every log message cosfast emits (DEBUG and up), to check no secret is in one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(self.format(record))


@dataclass
class Soak:
    emulator: Emulator
    client: CosS3Client
    workdir: Path
    tally: Tally

    def run(self, plan: Plan) -> None:
        emu, tally = self.emulator, self.tally
        emu.put_object(BUCKET, plan.key, plan.data, with_crc=plan.with_crc)
        folder = self.workdir / f"d{plan.index}"
        folder.mkdir()
        dest = folder / "out.bin"
        if plan.sentinel is not None:
            dest.write_bytes(plan.sentinel)
        record_dir = self.workdir / f"r{plan.index}" if plan.record_dir else None
        emu.clear_log()
        for fault in plan.faults:
            emu.add_fault(fault)
        error = self._download(plan, dest, record_dir)
        emu.clear_faults()
        records = emu.request_log
        expected = self._pinned_bytes(plan, records)
        fired = self._count(records, len(expected), plan.part_size)
        tally.downloads += 1
        problems: list = []
        left = leakcheck.cosfast_leftovers(folder) + (
            leakcheck.cosfast_leftovers(record_dir) if record_dir and record_dir.exists() else [])
        if error is None:
            if dest.read_bytes() == expected:
                tally.outcomes["verified"] += 1
                tally.bytes_verified += len(expected)
            else:
                tally.bytes_lost += max(1, len(expected))
                problems.append("published wrong bytes")
            if left:
                problems.append(f"left {left} after success")
        else:
            problems += self._check_failure(plan, dest, error, fired, left)
            if not problems and _kept_for_resume(plan, error):
                problems += self._resume(plan, dest, folder, record_dir, expected)
        if problems:
            tally.problems.append(f"{plan.describe()}: {'; '.join(problems)}"
                                  + (f" (error: {type(error).__name__}: {error})" if error else ""))
        emu.delete_object(BUCKET, plan.key)
        shutil.rmtree(folder)
        if record_dir is not None:
            shutil.rmtree(record_dir, ignore_errors=True)

    def _download(self, plan: Plan, dest: Path, record_dir: Path | None) -> Exception | None:
        args = {"PartSize": plan.part_size, "MAXThread": plan.max_thread, "EnableCRC": plan.enable_crc,
                "DirectIO": plan.direct_io, "DumpRecordDir": str(record_dir) if record_dir else None}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # UnverifiedDownloadWarning: no CRC header
                if plan.outage:
                    # A part that fails every attempt: a short retry schedule keeps the soak
                    # fast; the failure path is the same as after download_file's 8 attempts.
                    options = dataclasses.replace(bridge.engine_options(self.client, plan.max_thread),
                                                  retry=RetryPolicy(max_attempts=2, base_delay=0.05))
                    with TransferEngine(options) as engine:
                        bridge.download_file(self.client, BUCKET, plan.key, str(dest), engine=engine, **args)
                else:
                    self.client.download_file(BUCKET, plan.key, str(dest), **args)
        except Exception as exc:  # noqa: BLE001 - judged by the caller: only the SDK's exceptions are right
            return exc
        return None

    def _count(self, records: list[RequestRecord], size: int, part_size: int) -> set:
        """Counts requests, retries and fired faults; returns the kinds that fired."""
        tally = self.tally
        tally.requests += len(records)
        fired: set = set()
        for record in records:
            for kind in record.faults:
                if kind == "status":
                    kind = f"status {record.status}"
                elif kind == "replace" and record.method == "HEAD":
                    kind = "replace (at the HEAD)"
                tally.fired[kind] += 1
                fired.add(kind)
            if record.method == "GET":
                tally.bytes_served += record.bytes_sent
        heads = [r for r in records if r.method == "HEAD"]
        tally.head_retries += max(0, len(heads) - 1)
        part_bytes = choose_part_size(size, part_size, 10000)
        gets = [r for r in records if r.method == "GET"]
        tally.get_retries += len(gets) - len({_range_start(r) // part_bytes for r in gets})
        return fired

    def _pinned_bytes(self, plan: Plan, records: list[RequestRecord]) -> bytes:
        """The version the download pinned: the object as its HEAD saw it (a replace fault
        fires at most once, so a HEAD retried after it sees the new version too)."""
        if any(r.method == "HEAD" and "replace" in r.faults for r in records):
            return Path(self.emulator.head_object(BUCKET, plan.key).path).read_bytes()
        return plan.data

    def _check_failure(self, plan: Plan, dest: Path, error: Exception, fired: set,
                       left: list) -> list:
        problems = []
        if not isinstance(error, (CosClientError, CosServiceError)) or not str(error).strip():
            problems.append("failed with an exception that is not the SDK's")
        untouched = dest.read_bytes() == plan.sentinel if plan.sentinel is not None else not dest.exists()
        if not untouched:
            self.tally.bytes_lost += max(1, len(plan.sentinel or b""))
            problems.append("destination changed by a failed download")
        if _kept_for_resume(plan, error):
            self.tally.outcomes["network failure, kept for resume"] += 1
            if len(left) != 2 or not any(name.endswith(".tmp") for name in left):
                problems.append(f"kept {left}, expected a temp file and a record")
        else:
            self.tally.outcomes["clear error, destination untouched"] += 1
            if left:
                problems.append(f"left {left} after a failure")
        if not plan.outage and not fired & FATAL_FIRED:
            problems.append("failed although every fault that fired was recoverable")
        return problems

    def _resume(self, plan: Plan, dest: Path, folder: Path, record_dir: Path | None,
                expected: bytes) -> list:
        """Calls download_file again (faults gone): it must finish, fetching only what the
        record does not hold."""
        record_path = next((p for p in (record_dir or folder).iterdir() if "resume" in p.name), None)
        record = ResumeRecord.load(str(record_path)) if record_path else None
        recorded = sum(length for length, _ in record.parts.values()) if record else 0
        self.emulator.clear_log()
        error = self._download(dataclasses.replace(plan, outage=False, faults=()), dest, record_dir)
        records = self.emulator.request_log
        self.tally.requests += len(records)
        fetched = sum(r.bytes_sent for r in records if r.method == "GET")
        self.tally.bytes_served += fetched
        if error is not None:
            return [f"resume failed: {type(error).__name__}: {error}"]
        if dest.read_bytes() != expected:
            self.tally.bytes_lost += max(1, len(expected))
            return ["resume published wrong bytes"]
        self.tally.outcomes["resumed to exact bytes"] += 1
        self.tally.bytes_verified += len(expected)
        problems = []
        missing = len(expected) - recorded
        if _flip_in_kept_part(plan, record):
            # The kept part's CRC is of the bytes received, flipped one included, so only the
            # object's CRC-64 shows it: the resumed call then fetches the object once more.
            if fetched != missing + len(expected):
                problems.append(f"resume fetched {fetched} bytes; {missing} were missing, and a part kept "
                                f"with a flipped byte should have made it fetch all {len(expected)} again")
        elif fetched != missing:
            problems.append(f"resume fetched {fetched} bytes, {missing} were missing")
        left = leakcheck.cosfast_leftovers(folder) + (
            leakcheck.cosfast_leftovers(record_dir) if record_dir and record_dir.exists() else [])
        if left:
            problems.append(f"left {left} after the resume")
        return problems


def _flip_in_kept_part(plan: Plan, record: ResumeRecord | None) -> bool:
    """Whether a byte flipped in transit lies in a part the first call finished and recorded."""
    return record is not None and any(
        fault.kind == "flip" and fault.offset // record.part_size in record.parts for fault in plan.faults)


def _kept_for_resume(plan: Plan, error: Exception) -> bool:
    return plan.multipart and isinstance(error, CosClientError) and "to resume" in str(error)


def _range_start(record: RequestRecord) -> int:
    if not record.range:
        return 0
    return int(record.range.split("=", 1)[1].split("-", 1)[0])


# -- the run ---------------------------------------------------------------------------------


def soak(limits: SoakLimits) -> Tally:
    workdir = Path(tempfile.mkdtemp(prefix="cosfast-soak-"))
    tally = Tally()
    started = time.monotonic()
    logs = LogText()
    cosfast_logger = logging.getLogger("cosfast")
    cosfast_logger.addHandler(logs)
    cosfast_logger.setLevel(logging.DEBUG)
    try:
        with Emulator(workdir / "emulator") as emu:
            emu.create_bucket(BUCKET)
            client = CosS3Client(CosConfig(**emu.sdk_config(Timeout=CLIENT_TIMEOUT)))
            runner = Soak(emu, client, workdir / "out", tally)
            runner.workdir.mkdir()
            # Warm-up: one clean download as wide as the widest run (16 parts at once), so the
            # baselines include the client's kept connection, the emulator's and the allocator's
            # steady state, and the part writer's pool of recycled staging buffers (one per
            # transfer in flight, kept by design).
            warm = Plan(index=-1, key="warm-up", data=random.Random(0).randbytes(16 * MIB), with_crc=True,
                        part_size=1, max_thread=16, enable_crc=True, direct_io=False, record_dir=False, sentinel=None,
                        faults=(), outage=False)
            runner.run(warm)
            tally.__init__()  # the warm-up is not counted
            gc.collect()
            fds0, conns0, rss0 = leakcheck.open_fds(), leakcheck.connections_to(emu.port), leakcheck.trimmed_rss_bytes()
            rss_trend = [rss0]
            for index in range(limits.start, limits.start + limits.downloads):
                if time.monotonic() - started > limits.seconds or tally.requests > limits.max_requests:
                    break
                rng = random.Random(f"{limits.seed}-{index}")
                runner.run(draw_plan(rng, index, limits.max_size))
                if tally.downloads % max(1, limits.downloads // 4) == 0:
                    rss_trend.append(_settled_rss())
            for index in range(limits.start, limits.start + limits.batches):
                if time.monotonic() - started > limits.seconds or tally.requests > limits.max_requests:
                    break
                rng = random.Random(f"{limits.seed}-batch-{index}")
                soak_batch.run_batch(emu, BUCKET, client, runner.workdir,
                                     soak_batch.draw_batch(rng, index, limits.batch_objects), tally)
                if tally.batches % max(1, limits.batches // 4) == 0:
                    rss_trend.append(_settled_rss())
            gc.collect()
            conns1 = leakcheck.settle(lambda: leakcheck.connections_to(emu.port), conns0)
            fds1 = leakcheck.settle(leakcheck.open_fds, fds0)
            rss1 = leakcheck.trimmed_rss_bytes()
            del client, runner
            gc.collect()
            conns_closed = leakcheck.settle(lambda: leakcheck.connections_to(emu.port), 0)
        leftovers = leakcheck.cosfast_leftovers(workdir)
        secret = emu.secret_key
    finally:
        cosfast_logger.removeHandler(logs)
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    checks = [
        (fds1 <= fds0, f"file descriptors: {fds0} after warm-up, {fds1} at the end"),
        (conns1 <= conns0, f"connections to the emulator: {conns0} after warm-up, {conns1} at the end"),
        (conns_closed == 0, f"connections once the client is gone: {conns_closed}"),
        (rss1 - rss0 <= RSS_SLACK, (f"RSS: {leakcheck.mib(rss0)} after warm-up, {leakcheck.mib(rss1)} at "
                                   f"the end ({(rss1 - rss0) / MIB:+.1f} MiB); by quarter of each phase: "
                                   + " ".join(f"{r / MIB:.1f}" for r in rss_trend))),
        (not leftovers, f"cosfast files left in the work folder: {leftovers or 'none'}"),
        (not any(secret in m or "q-signature" in m for m in logs.messages),
         f"log messages at DEBUG and up: {len(logs.messages)}, none with the SecretKey or a signature"),
    ]
    report(tally, limits, elapsed, checks)
    tally.problems += [text for ok, text in checks if not ok]
    return tally


def _settled_rss() -> int:
    """RSS once reference cycles of finished downloads (engines, threads) are collected."""
    gc.collect()
    return leakcheck.trimmed_rss_bytes()


def report(tally: Tally, limits: SoakLimits, elapsed: float, checks: list) -> None:
    lines = [(f"soak: {tally.downloads} download_file calls and {tally.batches} download_dir runs "
              f"({tally.batch_objects} objects) in {elapsed:.1f} s (seed {limits.seed}), "
              f"{tally.requests} requests to 127.0.0.1"), "", f"{'outcome':<46}{'count':>6}"]
    lines += [f"  {name:<44}{count:>6}" for name, count in sorted(tally.outcomes.items())]
    lines += ["", f"{'faults fired (requests)':<46}{'count':>6}"]
    lines += [f"  {name:<44}{count:>6}" for name, count in sorted(tally.fired.items())]
    lines += ["",
              (f"{'retries':<46}{tally.get_retries + tally.head_retries:>6}  "
              f"(GET {tally.get_retries}, HEAD {tally.head_retries})"),
              f"{'bytes verified':<40}{tally.bytes_verified:>12}  ({leakcheck.mib(tally.bytes_verified)})",
              f"{'bytes served by the emulator':<40}{tally.bytes_served:>12}",
              f"{'bytes lost':<40}{tally.bytes_lost:>12}", ""]
    lines += [f"{'ok  ' if ok else 'FAIL'} {text}" for ok, text in checks]
    for problem in tally.problems[:30]:
        lines.append(f"FAIL {problem}")
    if len(tally.problems) > 30:
        lines.append(f"... and {len(tally.problems) - 30} more problems")
    print("\n".join(lines), flush=True)


def parse_args(argv: list | None) -> SoakLimits:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="CI size: 30 downloads and 2 download_dir runs, at most 25 s")
    parser.add_argument("--downloads", type=int, help="how many downloads (default 400)")
    parser.add_argument("--batches", type=int, help="download_dir runs after the downloads (default 20)")
    parser.add_argument("--seconds", type=float, help="stop starting downloads after this (default 540)")
    parser.add_argument("--max-requests", type=int, default=50_000, help="stop after this many requests")
    parser.add_argument("--max-size", type=int, default=6 * MIB, help="largest object in bytes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="index of the first download (to replay one)")
    args = parser.parse_args(argv)
    downloads = args.downloads or (30 if args.quick else 400)
    seconds = args.seconds or (25.0 if args.quick else 540.0)
    batches = args.batches if args.batches is not None else (2 if args.quick else 20)
    return SoakLimits(downloads=downloads, batches=batches, batch_objects=12 if args.quick else 40,
                      seconds=seconds, max_requests=args.max_requests,
                      max_size=args.max_size if not args.quick else min(args.max_size, 4 * MIB),
                      seed=args.seed, start=args.start)


def main(argv: list | None = None) -> int:
    tally = soak(parse_args(argv))
    ok = not tally.problems and tally.bytes_lost == 0
    print("result: PASS" if ok else "result: FAIL", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
