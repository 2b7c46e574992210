"""Prints the benchmark summary as a Markdown table (GB/s per contender and buffer size, combine
latency in ns) and saves it with the raw medians to bench/results/crc64.json."""
from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

RESULTS = Path(__file__).parent / "results"


def _rows(benchmarks) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    throughput: dict[str, dict[str, float]] = {}
    latency: dict[str, dict[str, float]] = {}
    for bench in benchmarks:
        info, median = bench.extra_info, bench.stats.median
        if "nbytes" in info:
            throughput.setdefault(info["contender"], {})[info["size"]] = info["nbytes"] / median / 1e9
        elif "contender" in info:
            latency.setdefault(info["contender"], {})[info["size"]] = median * 1e9
    return throughput, latency


def _table(rows: dict[str, dict[str, float]], unit: str, fmt: str) -> list[str]:
    columns = sorted({c for r in rows.values() for c in r}, key=str)
    lines = [f"| contender | " + " | ".join(f"{c} ({unit})" for c in columns) + " |",
             "| --- |" + " ---: |" * len(columns)]
    first = columns[0] if columns else ""
    for name, row in sorted(rows.items(), key=lambda kv: -kv[1].get(first, 0) if unit == "GB/s" else kv[1].get(first, 0)):
        lines.append(f"| {name} | " + " | ".join(format(row[c], fmt) if c in row else "-" for c in columns) + " |")
    return lines


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    benchmarks = [b for b in getattr(session, "benchmarks", []) if b.extra_info.get("contender")]
    if not benchmarks:
        return
    throughput, latency = _rows(benchmarks)
    lines = ["", "CRC-64/XZ (GB/s = bytes / median time; combine: median ns per call)", ""]
    if throughput:
        lines += _table(throughput, "GB/s", ".2f") + [""]
    if latency:
        lines += _table(latency, "ns", ".0f") + [""]
    for line in lines:
        terminalreporter.write_line(line)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "crc64.json").write_text(json.dumps(
        {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
         "throughput_gbps": throughput, "combine_ns": latency}, indent=2))
