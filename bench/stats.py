"""Medians, ranges and paired ratios over the rounds of a suite."""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.record import RunRecord

METRICS = ("wall", "mbps", "files_per_s", "cpu", "cpu_per_gib", "maxrss_mib")


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float


@dataclass(frozen=True)
class Summary:
    contender: str
    ok_runs: int
    failed_runs: int
    errors: tuple[str, ...]  # distinct error lines, first seen first
    metrics: dict  # metric name -> Spread, over the successful runs
    ratio: Spread | None  # baseline's speed / this one's, per round, when both succeeded


def summarise(records: list[RunRecord], contender: str, baseline: str) -> Summary:
    mine = [r for r in records if r.contender == contender]
    good = [r for r in mine if r.ok]
    errors = tuple(dict.fromkeys(r.error for r in mine if not r.ok))
    metrics = {name: spread([getattr(r, name) for r in good]) for name in METRICS} if good else {}
    return Summary(contender, len(good), len(mine) - len(good), errors, metrics,
                   paired_ratio(records, baseline=baseline, contender=contender))


def spread(values: list[float]) -> Spread:
    return Spread(statistics.median(values), min(values), max(values))


def paired_ratio(records: list[RunRecord], *, baseline: str, contender: str) -> Spread | None:
    """How many times faster the baseline was than ``contender``, round by round (same bytes,
    so the ratio of wall times), then the median: pairs share the machine's mood of the moment."""
    walls: dict[tuple[str, int], float] = {(r.contender, r.round): r.wall for r in records if r.ok}
    ratios = [walls[(contender, rnd)] / walls[(baseline, rnd)]
              for (name, rnd) in walls if name == contender and (baseline, rnd) in walls]
    return spread(ratios) if ratios else None
