"""``cosfast demo``: the main job on a local stage.

Seeds a local emulator (one large object and a folder of small ones), serves it on a free port
of 127.0.0.1, downloads both with cosfast (``download_file`` and ``download_dir``) and, when
``qcloud_cos`` is installed, with the official SDK (its ``download_file``, and its documented
"download a COS directory" recipe: list page by page, ``download_file`` per key in a
``SimpleThreadPool``), checks every file's CRC-64 against the emulator's, prints both sides'
throughput, and removes everything it created.

The emulator serves from a child process (``python -m cosfast.emulator``), not from a thread of
this one: in-process, its Python HTTP server would compete with the downloader for the GIL and
the demo would measure the emulator rather than the clients.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from cosfast.cli.errors import CommandError, ExitCode, UsageError
from cosfast.cli.output import Output
from cosfast.cli.progress import human_bytes

BUCKET = "demo-1250000000"
BIG_KEY = "big/object.bin"
SMALL_PREFIX = "small/"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNIT = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}
_SEED_CHUNK = 4 * 1024 * 1024


def parse_size(text: str) -> int:
    """``256MiB``, ``64k``, ``1.5GB`` (binary units either way), ``1000`` -> bytes."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 256MiB, 64KiB or 1000")
    number, unit = match.groups()
    return int(float(number) * _UNIT[(unit or "").lower()[:1]])


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=parse_size, default=parse_size("256MiB"),
                        help="size of the large object (default 256MiB)")
    parser.add_argument("--files", type=int, default=500, help="number of small objects (default 500)")
    parser.add_argument("--file-size", type=parse_size, default=parse_size("64KiB"),
                        help="size of each small object (default 64KiB)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per side, best kept (default 2)")
    parser.add_argument("--no-sdk", action="store_true", help="skip the official SDK's side")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the result table")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


@dataclass(frozen=True)
class Seeded:
    big: Any  # the emulator's ObjectInfo of the large object
    small: dict  # key -> ObjectInfo


@dataclass(frozen=True)
class Timing:
    seconds: float
    nbytes: int
    files: int

    def bytes_per_second(self) -> float:
        return self.nbytes / self.seconds if self.seconds > 0 else 0.0

    def files_per_second(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else 0.0


def _seed(emulator: Any, workdir: str, args: argparse.Namespace) -> Seeded:
    source = os.path.join(workdir, "seed.bin")
    with open(source, "wb") as f:
        left = args.size
        while left:
            chunk = os.urandom(min(_SEED_CHUNK, left))
            f.write(chunk)
            left -= len(chunk)
    emulator.create_bucket(BUCKET)
    big = emulator.put_object(BUCKET, BIG_KEY, path=source)
    os.unlink(source)
    small = {}
    for i in range(args.files):
        key = f"{SMALL_PREFIX}{i % 10:02d}/file-{i:05d}.bin"
        small[key] = emulator.put_object(BUCKET, key, os.urandom(args.file_size))
    return Seeded(big, small)


def _timed(action: Callable[[], None], nbytes: int, files: int) -> Timing:
    # Flush dirty pages first (the seed's, the other side's files): writeback of earlier writes
    # would otherwise throttle whichever download runs next.
    os.sync()
    start = time.perf_counter()
    action()
    return Timing(time.perf_counter() - start, nbytes, files)


def _verify(path: str, info: Any) -> Optional[str]:
    """None if the file at ``path`` has the object's size and CRC-64, else what is wrong."""
    from cosfast.crc64 import crc64_file

    if not os.path.isfile(path):
        return f"{path} is missing"
    if os.path.getsize(path) != info.size:
        return f"{path} has {os.path.getsize(path)} bytes, the object {info.size}"
    if info.crc64 is not None and crc64_file(path) != info.crc64:
        return f"{path} does not have the object's CRC-64"
    return None


def _verify_tree(folder: str, seeded: Seeded, strip: str) -> list[str]:
    problems = [_verify(os.path.join(folder, *key[len(strip):].split("/")), info)
                for key, info in seeded.small.items()]
    return [p for p in problems if p]


def _measure(side: str, download_file: Callable[..., Any], download_folder: Callable[[str], list[str]],
             workdir: str, seeded: Seeded) -> tuple[Timing, Timing, list[str]]:
    """Times one side's large-object and folder downloads, then verifies what they wrote."""
    dest = os.path.join(workdir, f"{side}-big.bin")
    big = _timed(lambda: download_file(BUCKET, BIG_KEY, dest), seeded.big.size, 1)
    problems = [p for p in [_verify(dest, seeded.big)] if p]
    folder = os.path.join(workdir, f"{side}-dir")
    small_bytes = sum(info.size for info in seeded.small.values())
    small = _timed(lambda: problems.extend(download_folder(folder)), small_bytes, len(seeded.small))
    problems += _verify_tree(folder, seeded, SMALL_PREFIX)
    # The files stay until the demo ends: removing them would hand the next run the pages they
    # held, and a user's download writes into pages nobody just freed.
    return big, small, problems


def _run_cosfast(config: dict, workdir: str, seeded: Seeded) -> tuple[Timing, Timing, list[str]]:
    from cosfast.client import CosS3Client
    from cosfast.config import CosConfig

    client = CosS3Client(CosConfig(**config))

    def download_folder(folder: str) -> list[str]:
        summary = client.download_dir(BUCKET, SMALL_PREFIX, folder)
        return [f"{key}: {reason}" for key, reason in summary.failed]

    return _measure("cosfast", client.download_file, download_folder, workdir, seeded)


def _run_sdk(config: dict, workdir: str, seeded: Seeded) -> tuple[Timing, Timing, list[str]]:
    from qcloud_cos import CosConfig, CosS3Client
    from qcloud_cos.cos_threadpool import SimpleThreadPool

    client = CosS3Client(CosConfig(**config))

    def download_folder(folder: str) -> list[str]:
        # The SDK's documented recipe: list every page, then download_file per key in a pool.
        keys, marker = [], ""
        while True:
            page = client.list_objects(BUCKET, Prefix=SMALL_PREFIX, Marker=marker)
            keys += [item["Key"] for item in page.get("Contents", [])]
            if page.get("IsTruncated") != "true":
                break
            marker = page.get("NextMarker") or keys[-1]
        pool = SimpleThreadPool()
        for key in keys:
            local = os.path.join(folder, key[len(SMALL_PREFIX):])
            os.makedirs(os.path.dirname(local), exist_ok=True)
            pool.add_task(client.download_file, BUCKET, key, local)
        pool.wait_completion()
        return [] if pool.get_result()["success_all"] else ["the SDK's pool reported failed downloads"]

    return _measure("sdk", client.download_file, download_folder, workdir, seeded)


def _sdk_available() -> bool:
    try:
        import qcloud_cos  # noqa: F401
    except ImportError:
        return False
    return True


class _ServedEmulator:
    """``python -m cosfast.emulator`` on a free port, serving ``root``; stopped on exit."""

    def __init__(self, root: str, secret_id: str, secret_key: str) -> None:
        self.root = root
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.endpoint = ""
        self._process: Optional[subprocess.Popen] = None

    def __enter__(self) -> "_ServedEmulator":
        package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (package_parent, os.environ.get("PYTHONPATH")) if p))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "cosfast.emulator", "--root", self.root, "--port", "0",
             "--secret-id", self.secret_id, "--secret-key", self.secret_key],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.startswith("endpoint: "):
                self.endpoint = line.split(" ", 1)[1].strip()
            if line.startswith("ready"):
                break
        if not self.endpoint:
            self.__exit__()
            raise CommandError("the emulator did not start (try `cosfast emulator --root DIR`)", ExitCode.FAILED)
        return self

    def config(self) -> dict:
        url = urlsplit(self.endpoint)
        return {"Region": "ap-guangzhou", "SecretId": self.secret_id, "SecretKey": self.secret_key,
                "IP": url.hostname, "Port": url.port, "Scheme": url.scheme}

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None


def _best(old: Optional[tuple], new: tuple) -> tuple:
    """Keeps each side's fastest round (a shared machine's noise only ever slows a run down) and
    every verification problem of every round."""
    if old is None:
        return new
    big = min(old[0], new[0], key=lambda t: t.seconds)
    small = min(old[1], new[1], key=lambda t: t.seconds)
    return big, small, old[2] + new[2]


def run_demo(args: argparse.Namespace, out: Output) -> ExitCode:
    if min(args.files, args.size, args.file_size, args.rounds) < 1:
        raise UsageError("--size, --files, --file-size and --rounds must be positive")
    try:
        from cosfast.emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator
    except ImportError as exc:
        raise CommandError(f"the demo needs the emulator's dependencies ({exc}): "
                           "pip install 'cosfast[emulator]'", ExitCode.USAGE) from None
    with_sdk = not args.no_sdk and _sdk_available()
    workdir = tempfile.mkdtemp(prefix="cosfast-demo-")
    try:
        root = os.path.join(workdir, "emulator")
        out.note(f"seeding one {human_bytes(args.size)} object and {args.files} objects of "
                 f"{human_bytes(args.file_size)} ...")
        seeded = _seed(Emulator(root), workdir, args)  # writes the emulator's storage directly
        sides = {"cosfast": _run_cosfast}
        if with_sdk:
            sides["qcloud_cos"] = _run_sdk
        elif not args.no_sdk:
            out.note("the official SDK (cos-python-sdk-v5) is not installed: showing cosfast alone")
        results: dict = {}
        with _ServedEmulator(root, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY) as served:
            out.note(f"emulator at {served.endpoint}; {args.rounds} round(s) of: " + ", then ".join(sides))
            for round_number in range(args.rounds):
                round_dir = os.path.join(workdir, f"round-{round_number + 1}")
                os.mkdir(round_dir)
                for side, run in sides.items():
                    results[side] = _best(results.get(side), run(served.config(), round_dir, seeded))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    problems = [f"{side}: {p}" for side, (_, _, found) in results.items() for p in found]
    _report(out, args, results, problems)
    if problems:
        raise CommandError(f"{len(problems)} file(s) failed verification: {problems[0]}", ExitCode.FAILED)
    return ExitCode.OK


def _report(out: Output, args: argparse.Namespace, results: dict, problems: list[str]) -> None:
    doc = {"type": "result", "object_bytes": args.size, "files": args.files, "file_bytes": args.file_size,
           "rounds": args.rounds, "verified": not problems, "sides": {}}
    for side, (big, small, _) in results.items():
        doc["sides"][side] = {"object_seconds": round(big.seconds, 6),
                              "object_bytes_per_second": round(big.bytes_per_second()),
                              "folder_seconds": round(small.seconds, 6),
                              "folder_files_per_second": round(small.files_per_second(), 1)}
    rows = [("", *results.keys()), (f"one {human_bytes(args.size)} object",
                                    *(f"{human_bytes(b.bytes_per_second())}/s" for b, _, _ in results.values())),
            (f"{args.files} files of {human_bytes(args.file_size)}",
             *(f"{s.files_per_second():.0f} files/s" for _, s, _ in results.values()))]
    if "qcloud_cos" in results:
        (cb, cs, _), (sb, ss, _) = results["cosfast"], results["qcloud_cos"]
        rows[0] += ("cosfast / SDK",)
        rows[1] += (f"{sb.seconds / cb.seconds:.2f}x",)
        rows[2] += (f"{ss.seconds / cs.seconds:.2f}x",)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    table = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
    verdict = "every file verified (size and CRC-64)" if not problems else f"{len(problems)} file(s) WRONG"
    verdict += ("\nbest of each side's rounds; the emulator is a Python server on one core and often the "
                "limit here:\nmeasure against a real server with `cosfast bench`")
    if out.json_mode:
        out.record(doc, "")
    else:
        out.stdout.write(f"{table}\n{verdict}\n")
        out.stdout.flush()
