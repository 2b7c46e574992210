"""What people and machines read: a Markdown table, JSON lines, a PNG bar chart."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.stats import Spread, Summary


@dataclass(frozen=True)
class ReportContext:
    suite: str
    title: str  # e.g. "big: 1 x 1GiB, emulator, disk, 5 rounds"
    baseline: str
    descriptions: dict  # contender -> what it does
    versions: dict  # contender (and server) -> version string
    skipped: dict  # contender -> why it did not run
    command: str


def markdown(context: ReportContext, summaries: list[Summary]) -> str:
    speed = "files/s" if context.suite == "small" else "MB/s"
    lines = [
        f"### {context.title}",
        "",
        f"`{context.command}`",
        "",
        (f"| contender | what | {speed} median (min..max) | wall s | CPU s | CPU s/GiB | peak RSS MiB "
        f"| {context.baseline} speedup (paired) | runs |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in summaries:
        what = context.descriptions.get(s.contender, "")
        runs = f"{s.ok_runs}/{s.ok_runs + s.failed_runs}"
        if not s.ok_runs:
            error = s.errors[0] if s.errors else "failed"
            lines.append(f"| {s.contender} | {what} | failed: {_cell(error)} | | | | | | {runs} |")
            continue
        m = s.metrics
        main = m["files_per_s"] if context.suite == "small" else m["mbps"]
        lines.append(
            f"| {s.contender} | {what} | {_spread(main, 0)} | {m['wall'].median:.2f} | {m['cpu'].median:.2f} "
            f"| {m['cpu_per_gib'].median:.2f} | {m['maxrss_mib'].median:.0f} | {_ratio(s.ratio)} | {runs} |"
        )
    lines.append("")
    lines.append(f"{context.baseline} speedup: the baseline's speed over the row's, per round, median "
                 "(>1: the baseline was faster). CPU: user+sys of the process tree during the transfer.")
    for name, why in context.skipped.items():
        lines.append(f"- skipped {name}: {why}")
    failed = [s for s in summaries if s.ok_runs and s.failed_runs]
    for s in failed:
        lines.append(f"- {s.contender}: {s.failed_runs} failed runs ({_cell(s.errors[0])})")
    lines.append("")
    lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in context.versions.items()))
    return "\n".join(lines) + "\n"


def summary_json(context: ReportContext, summaries: list[Summary]) -> dict:
    return {"type": "summary", **asdict(context), "contenders": [asdict(s) for s in summaries]}


def append_json_line(path: Path, body: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(body) + "\n")


def chart(context: ReportContext, summaries: list[Summary], path: Path) -> str | None:
    """Writes the PNG; returns a one-line reason instead when it cannot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "chart skipped: matplotlib is not installed (pip install 'cosfast[bench]')"
    metric = "files_per_s" if context.suite == "small" else "mbps"
    done = [s for s in summaries if s.ok_runs]
    if not done:
        return "chart skipped: no contender finished a run"
    values = [s.metrics[metric] for s in done]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(done) + 2), 4.5))
    colors = ["tab:orange" if s.contender == context.baseline else "tab:blue" for s in done]
    ax.bar([s.contender for s in done], [v.median for v in values], color=colors,
           yerr=[[v.median - v.low for v in values], [v.high - v.median for v in values]], capsize=4)
    ax.set_ylabel("files/s" if metric == "files_per_s" else "MB/s (10^6 bytes)")
    ax.set_title(context.title + "\nmedian, error bars min..max", fontsize=10)
    ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def _spread(s: Spread, digits: int) -> str:
    return f"{s.median:.{digits}f} ({s.low:.{digits}f}..{s.high:.{digits}f})"


def _ratio(r: Spread | None) -> str:
    return "n/a" if r is None else f"{r.median:.2f}x ({r.low:.2f}..{r.high:.2f})"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")[:160]


def rerender(jsonl: Path, baseline: str) -> str:
    """The Markdown table of an earlier run's JSON lines, compared with another baseline."""
    from dataclasses import fields, replace

    from bench.record import RunRecord
    from bench.stats import summarise

    lines = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    runs = [RunRecord(**{f.name: line[f.name] for f in fields(RunRecord) if f.name in line})  # older lines lack newer fields
            for line in lines if line["type"] == "run"]
    summary = next((line for line in lines if line["type"] == "summary"), None)
    if summary is None:
        raise ValueError(f"{jsonl} has no summary line (was the run interrupted?)")
    context = ReportContext(**{f.name: summary[f.name] for f in fields(ReportContext)})
    names = [c["contender"] for c in summary["contenders"]]
    return markdown(replace(context, baseline=baseline), [summarise(runs, name, baseline) for name in names])
