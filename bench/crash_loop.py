"""Crash-restart loop: a downloader process SIGKILLed at random moments, again and again,
until the object is complete.

    python3 -m bench.crash_loop            # three objects (16-48 MiB), tens of kills
    python3 -m bench.crash_loop --quick    # CI: one 12 MiB object, a few kills, ~20 s

Each round stores an object in an in-process emulator on 127.0.0.1, slows every GET to a
fixed rate per connection (so one download takes a few seconds), and starts
``download_file`` in a child process; the child is SIGKILLed after a random delay and started
again, until a child exits on its own. Checks: a killed child never leaves a destination that
is not the whole object; whatever the kills leave (temp file, lock, resume record) is only
cosfast's own files and the record is never torn; the final file is byte-exact; nothing is
left beside it; and the bytes the emulator served (its request log's ``bytes_sent``) stay
within the object size plus, per kill, the parts in flight and the parts finished since the
last record save (``Round.waste_bound``). Exit status 0 only if all of that holds.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script (python3 bench/crash_loop.py)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cosfast
from bench import leakcheck
from cosfast.emulator import Emulator, Fault
from cosfast.transfer.record import CorruptRecordError, ResumeRecord

MIB = 1024 * 1024
BUCKET = "crash-1250000000"
REPO_ROOT = str(Path(cosfast.__file__).resolve().parent.parent)
# download_file saves its resume record at most this often (DownloadOptions.record_interval).
RECORD_INTERVAL = 1.0
# A child needs about this long to start Python and import cosfast.
STARTUP = 0.4
# Kills land uniformly in the first this-fraction of an uninterrupted download's time, so most
# runs die mid-transfer (a few before the first request) until max_kills is reached.
KILL_WINDOW = 0.6
CHILD_TIMEOUT = 120.0

DOWNLOADER = textwrap.dedent("""
    import json, sys
    from cosfast import CosConfig, CosS3Client
    config, bucket, key, dest, max_thread, direct_io = json.loads(sys.argv[1])
    CosS3Client(CosConfig(**config)).download_file(bucket, key, dest, PartSize=1,
                                                   MAXThread=max_thread, EnableCRC=True, DirectIO=direct_io)
""")


@dataclass(frozen=True)
class Round:
    size: int
    max_thread: int
    rate: int  # bytes per second per connection
    max_kills: int
    direct_io: bool = False  # download_file(DirectIO=...): killed with direct writes in flight

    @property
    def clean_seconds(self) -> float:
        """How long one uninterrupted download takes (the slow fault sets the pace)."""
        return STARTUP + self.size / (self.max_thread * self.rate)

    def waste_bound(self, kills: int) -> int:
        """Most bytes the loop may fetch: the object once, plus per kill the parts in flight
        (MAXThread parts of 1 MiB) and the parts finished since the last record save."""
        per_kill = self.max_thread * MIB + RECORD_INTERVAL * self.max_thread * self.rate
        return int(self.size + kills * per_kill)


@dataclass
class RoundResult:
    round: Round
    runs: int
    kills: int
    seconds: float
    served: int
    problems: list

    @property
    def ratio(self) -> float:
        return self.served / self.round.size


def run_round(emu: Emulator, workdir: Path, spec: Round, rng: random.Random, index: int) -> RoundResult:
    key = f"crash/{index}"
    data = rng.randbytes(spec.size)
    emu.put_object(BUCKET, key, data)
    emu.clear_faults()
    emu.clear_log()
    emu.add_fault(Fault(kind="slow", key=key, method="GET", rate=spec.rate, times=None))
    folder = workdir / f"round{index}"
    folder.mkdir()
    dest = folder / "out.bin"
    args = json.dumps([emu.sdk_config(), BUCKET, key, str(dest), spec.max_thread, spec.direct_io])
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    problems: list = []
    runs = kills = 0
    started = time.monotonic()
    while True:
        runs += 1
        child = subprocess.Popen([sys.executable, "-c", DOWNLOADER, args], env=env,
                                 stderr=subprocess.PIPE, text=True)
        try:
            if kills < spec.max_kills:
                try:
                    child.wait(rng.uniform(0.1, KILL_WINDOW * spec.clean_seconds))
                except subprocess.TimeoutExpired:
                    child.send_signal(signal.SIGKILL)
            code = child.wait(CHILD_TIMEOUT)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            stderr = child.stderr.read()
            child.stderr.close()
        if code == -signal.SIGKILL:
            kills += 1
            problems += _check_after_kill(folder, dest, data)
            continue
        if code != 0:
            problems.append(f"run {runs} exited with {code}: {stderr.strip()[-500:]}")
        break
    seconds = time.monotonic() - started
    served = sum(r.bytes_sent for r in emu.request_log if r.method == "GET" and r.key == key)
    if not dest.exists() or dest.read_bytes() != data:
        problems.append("the final file is not byte-exact")
    left = leakcheck.cosfast_leftovers(folder)
    if left:
        problems.append(f"left beside the destination: {left}")
    result = RoundResult(spec, runs, kills, seconds, served, problems)
    if served > spec.waste_bound(kills):
        problems.append(f"served {served} bytes, more than the bound {spec.waste_bound(kills)} for {kills} kills")
    emu.delete_object(BUCKET, key)
    return result


def _check_after_kill(folder: Path, dest: Path, data: bytes) -> list:
    """After a SIGKILL: nothing published but the whole object (a kill between the rename and
    the record's removal), only cosfast's files, and a record that reads."""
    problems = []
    if dest.exists() and dest.read_bytes() != data:
        problems.append("a killed download published a file that is not the object")
    strangers = [p.name for p in folder.iterdir() if ".cosfast" not in p.name and p != dest]
    if strangers:
        problems.append(f"unexpected files after a kill: {strangers}")
    record = folder / f".{dest.name}.cosfast.resume"
    try:
        ResumeRecord.load(str(record))
    except CorruptRecordError as exc:
        problems.append(f"torn resume record after a kill: {exc}")
    return problems


def crash_loop(rounds: list, seed: int) -> list:
    rng = random.Random(seed)
    results = []
    with tempfile.TemporaryDirectory(prefix="cosfast-crash-") as tmp:
        workdir = Path(tmp)
        with Emulator(workdir / "emulator") as emu:
            emu.create_bucket(BUCKET)
            for index, spec in enumerate(rounds):
                results.append(run_round(emu, workdir, spec, rng, index))
    return results


def report(results: list, seed: int) -> None:
    lines = [f"crash loop (seed {seed}): downloader SIGKILLed at random moments until complete", "",
             "object     MAXThread  DirectIO  rate/conn   runs  kills  seconds  served/size  bound  result"]
    for r in results:
        s = r.round
        lines.append(f"{leakcheck.mib(s.size):>9}  {s.max_thread:>9}  {s.direct_io!s:>8}  {leakcheck.mib(s.rate) + '/s':>9}  "
                     f"{r.runs:>5}  {r.kills:>5}  {r.seconds:>7.1f}  {r.ratio:>10.2f}x  "
                     f"{s.waste_bound(r.kills) / s.size:>4.1f}x  "
                     f"{'byte-exact' if not r.problems else 'FAIL'}")
    total_size = sum(r.round.size for r in results)
    total_served = sum(r.served for r in results)
    lines.append("")
    lines.append(f"total: {sum(r.kills for r in results)} kills, {leakcheck.mib(total_served)} served for "
                 f"{leakcheck.mib(total_size)} of objects ({total_served / total_size:.2f}x)")
    for r in results:
        lines += [f"FAIL {leakcheck.mib(r.round.size)} object: {p}" for p in r.problems]
    print("\n".join(lines), flush=True)


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI size: one 12 MiB object, at most 5 kills")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.quick:
        rounds = [Round(size=12 * MIB, max_thread=4, rate=MIB, max_kills=5),
                  Round(size=12 * MIB, max_thread=4, rate=MIB, max_kills=5, direct_io=True)]
    else:
        rounds = [Round(size=16 * MIB, max_thread=2, rate=2 * MIB, max_kills=15),
                  Round(size=32 * MIB, max_thread=4, rate=2 * MIB, max_kills=20, direct_io=True),
                  Round(size=48 * MIB, max_thread=8, rate=MIB, max_kills=20)]
    results = crash_loop(rounds, args.seed)
    report(results, args.seed)
    ok = not any(r.problems for r in results)
    print("result: PASS" if ok else "result: FAIL", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
