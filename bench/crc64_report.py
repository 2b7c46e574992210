"""Renders CRC-64 benchmark results as Markdown tables; with several result files (one per run,
written by bench/conftest.py) it takes the median of each cell across runs:

    python3 bench/crc64_report.py bench/results/crc64-*.json
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

Rows = dict[str, dict[str, float]]


def table(rows: Rows, unit: str, *, higher_is_better: bool) -> list[str]:
    columns = sorted({c for row in rows.values() for c in row})
    lines = ["| contender | " + " | ".join(f"{c} ({unit})" for c in columns) + " |",
             "| --- |" + " ---: |" * len(columns)]
    sign = -1 if higher_is_better else 1
    ordered = sorted(rows.items(), key=lambda kv: sign * kv[1].get(columns[0], 0) if columns else 0)
    for name, row in ordered:
        cells = [(f"{row[c]:.2f}" if unit == "GB/s" else f"{row[c]:.0f}") if c in row else "-" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def render(throughput: Rows, latency: Rows) -> list[str]:
    lines: list[str] = []
    if throughput:
        lines += table(throughput, "GB/s", higher_is_better=True) + [""]
    if latency:
        lines += table(latency, "ns", higher_is_better=False) + [""]
    return lines


def median_of(runs: list[Rows]) -> Rows:
    cells: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        for name, row in run.items():
            for column, value in row.items():
                cells.setdefault(name, {}).setdefault(column, []).append(value)
    return {name: {c: statistics.median(v) for c, v in row.items()} for name, row in cells.items()}


def main(paths: list[str]) -> None:
    results = [json.loads(Path(p).read_text()) for p in paths]
    print(f"median of {len(results)} run(s)\n")
    print("\n".join(render(median_of([r["throughput_gbps"] for r in results]),
                           median_of([r["combine_ns"] for r in results]))))


if __name__ == "__main__":
    main(sys.argv[1:])
