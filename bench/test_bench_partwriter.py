"""GB/s of a PartSink writing 1 GiB, side by side with plain Python writers, in one run.

    python3 -m pytest bench/test_bench_partwriter.py -q --benchmark-only

Each writer gets 1 GiB in 1 MiB chunks handed out from one reused buffer, as libcurl hands a
write callback its receive buffer. Targets: a file on the local disk (pytest's tmp dir) and
one on /dev/shm (tmpfs). Every writer overwrites the same file, which one untimed pass wrote
first: allocating fresh page-cache pages is slow and erratic on this VM, and a download's
temp file is preallocated anyway, so the timed rounds measure the copy into cached pages
(plus the CRC where a writer computes one), not page allocation. Best of N rounds after one
warm-up round. Prints a Markdown table and saves it (and JSON) under bench/results/.
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import pytest

from cosfast import _partwriter, _partwriter_py
from cosfast.crc64 import KERNEL, crc64

GiB = 1 << 30
CHUNK = 1 << 20
ROUNDS = 3
RESULTS_DIR = Path(__file__).resolve().parent / "results"

WRITERS = {
    "cosfast PartSink (pwrite + CRC-64 in C, GIL released)": "partsink",
    "PartSink twin (os.pwrite + cosfast.crc64 from Python)": "twin",
    "os.pwrite loop (no CRC)": "pwrite",
    "Python file.write loop (no CRC)": "filewrite",
}


def write_with_sink(module, path: Path, view: memoryview) -> None:
    with module.TempFile(path, GiB, create=False) as tf:
        sink = module.PartSink(tf, 0, GiB)
        for _ in range(GiB // CHUNK):
            sink(view)
        sink.raise_if_failed()
        assert sink.done


def write_with_pwrite(path: Path, view: memoryview) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        for offset in range(0, GiB, CHUNK):
            os.pwrite(fd, view, offset)
    finally:
        os.close(fd)


def write_with_file(path: Path, view: memoryview) -> None:
    with open(path, "r+b") as f:
        for _ in range(GiB // CHUNK):
            f.write(view)


RUNNERS = {
    "partsink": lambda path, view: write_with_sink(_partwriter, path, view),
    "twin": lambda path, view: write_with_sink(_partwriter_py, path, view),
    "pwrite": write_with_pwrite,
    "filewrite": write_with_file,
}


@pytest.fixture(scope="module")
def buffer() -> memoryview:
    return memoryview(bytearray(os.urandom(CHUNK)))


@pytest.fixture(scope="module")
def table(request):
    rows: list[dict] = []
    yield rows
    lines = [
        f"CRC kernel: {KERNEL}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; 1 GiB in 1 MiB chunks, best of {ROUNDS} after 1 warm-up",
        "",
        "| writer | target | GB/s | best s |",
        "| --- | --- | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['writer']} | {row['target']} | {row['gbps']:.2f} | {row['best_s']:.3f} |"
        )
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "partwriter.md").write_text("\n".join(lines) + "\n")
    (RESULTS_DIR / "partwriter.json").write_text(json.dumps(rows, indent=2) + "\n")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    reporter.write_line("")
    for line in lines:
        reporter.write_line(line)


@pytest.fixture(scope="module")
def target_files(tmp_path_factory, buffer, table):
    """One 1 GiB file per target, written once (timed, not a round) so rounds reuse its pages."""
    dirs = {"disk": tmp_path_factory.mktemp("bench"), "/dev/shm": Path("/dev/shm")}
    files = {}
    for name, folder in dirs.items():
        path = folder / f"cosfast-bench-partwriter-{os.getpid()}.bin"
        start = time.perf_counter()
        with _partwriter.TempFile(path, GiB):
            pass
        write_with_pwrite(path, buffer)
        add_row(table, "first os.pwrite pass into fresh pages (setup, one pass)", name,
                time.perf_counter() - start)
        files[name] = path
    yield files
    for path in files.values():
        path.unlink()


def add_row(table: list[dict], writer: str, target: str, seconds: float) -> float:
    gbps = GiB / seconds / 1e9
    table.append({"writer": writer, "target": target, "gbps": gbps, "best_s": seconds,
                  "when": time.strftime("%Y-%m-%d %H:%M:%S")})
    return gbps


def test_crc64_alone(benchmark, buffer, table):
    """The CRC's own speed over the same chunks, for reading the PartSink rows."""

    def run() -> None:
        crc = 0
        for _ in range(GiB // CHUNK):
            crc = crc64(buffer, crc)

    benchmark.group = "1 GiB CRC only"
    benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    gbps = add_row(table, f"cosfast.crc64 alone ({KERNEL} kernel, no write)", "memory",
                   benchmark.stats.stats.min)
    benchmark.extra_info["GB/s"] = round(gbps, 3)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("target", ["disk", "/dev/shm"])
@pytest.mark.parametrize("writer", list(WRITERS))
def test_write_1gib(benchmark, target_files, buffer, table, writer, target):
    run = RUNNERS[WRITERS[writer]]
    path = target_files[target]
    benchmark.group = f"1 GiB to {target}"
    benchmark.pedantic(run, args=(path, buffer), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    gbps = add_row(table, writer, target, benchmark.stats.stats.min)
    benchmark.extra_info["GB/s"] = round(gbps, 3)
