"""Prints the CRC-64 benchmark summary as Markdown tables (GB/s = bytes / median time per
contender and buffer size; combine latency in ns) and saves it to bench/results/crc64-<time>.json,
one file per run, for bench/crc64_report.py to take medians across runs."""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from crc64_report import Rows, render

RESULTS = Path(__file__).parent / "results"


def _rows(benchmarks) -> tuple[Rows, Rows]:
    throughput: Rows = {}
    latency: Rows = {}
    for bench in benchmarks:
        info, median = bench.extra_info, bench.stats.median
        if "nbytes" in info:
            throughput.setdefault(info["contender"], {})[info["size"]] = info["nbytes"] / median / 1e9
        else:
            latency.setdefault(info["contender"], {})[info["size"]] = median * 1e9
    return throughput, latency


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    benchmarks = [b for b in getattr(session, "benchmarks", []) if b.extra_info.get("contender")]
    if not benchmarks:
        return
    throughput, latency = _rows(benchmarks)
    terminalreporter.write_line("")
    terminalreporter.write_line("CRC-64/XZ (GB/s = bytes / median time; combine: median ns per call)")
    terminalreporter.write_line("")
    for line in render(throughput, latency):
        terminalreporter.write_line(line)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / time.strftime("crc64-%Y%m%d-%H%M%S.json")
    path.write_text(json.dumps({"machine": platform.machine(), "python": platform.python_version(),
                                "throughput_gbps": throughput, "combine_ns": latency}, indent=2))
    terminalreporter.write_line(f"saved {path}; medians over runs: python3 bench/crc64_report.py bench/results/crc64-*.json")
