"""A suite from start to end: corpus, server, interleaved rounds, verification, reports."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench import contenders as registry
from bench import report
from bench.contenders import Contender, RunFiles
from bench.corpus import Corpus, CorpusSpec, build_corpus
from bench.job import Job
from bench.measure import RunSpec, run_measured
from bench.procs import child_env
from bench.record import RunRecord
from bench.servers import Endpoint, serve
from bench.settle import settle_inodes, settle_memory
from bench.stats import summarise
from bench.units import format_size
from bench.verify import verify_destination

TMPFS = Path("/dev/shm")


@dataclass(frozen=True)
class SuiteOptions:
    suite: str  # "big" | "small"
    count: int
    object_size: int
    rounds: int
    warmup: int  # untimed runs of the first contender before round 1
    settle: bool  # before each run, wait for freed memory to go back and inodes to be cheap (bench/settle.py)
    server: str  # "emulator" | "nginx" | "external"
    endpoint_url: str | None
    dest: str  # "disk" | "tmpfs" | a folder path
    only: tuple[str, ...] | None  # contender names to run; None: all of the suite
    baseline: str
    concurrency: int
    timeout: float | None  # per run; None: from the suite's size
    work_dir: Path | None  # kept when given; a temporary one is removed at the end
    out_dir: Path
    bucket: str
    chart: bool
    command: str  # as typed, for the report


@dataclass(frozen=True)
class SuiteResult:
    records: list[RunRecord]
    markdown: str
    files: dict  # "jsonl" / "markdown" / "chart" -> path

    @property
    def all_ok(self) -> bool:
        return bool(self.records) and all(r.ok for r in self.records)


def run_suite(options: SuiteOptions, say: Callable[[str], None] = print) -> SuiteResult:
    chosen, skipped = _choose(options, say)
    versions = {c.name: c.version() for c in chosen}
    for name, version in versions.items():
        say(f"version {name}: {version}")
    with _work_dir(options.work_dir) as work, _dest_root(options.dest, work) as dest_root:
        say(f"seeding {options.count} x {format_size(options.object_size)} in {work}")
        corpus = build_corpus(work / "corpus", _corpus_spec(options))
        stamp = time.strftime("%Y%m%d-%H%M%S")
        options.out_dir.mkdir(parents=True, exist_ok=True)
        jsonl = options.out_dir / f"{options.suite}-{stamp}.jsonl"
        with serve(options.server, corpus, work, options.endpoint_url) as endpoint:
            versions["server"] = endpoint.version
            say(f"server: {endpoint.kind} at {endpoint.url}; destination: {dest_root}")
            records = _rounds(options, chosen, _Stage(corpus, endpoint, work, dest_root), jsonl, say)
    context = report.ReportContext(
        suite=options.suite,
        title=_title(options, dest_root),
        baseline=options.baseline,
        descriptions={c.name: c.description.format(c=options.concurrency) for c in chosen},
        versions=versions,
        skipped=skipped,
        command=options.command,
    )
    summaries = [summarise(records, c.name, options.baseline) for c in chosen]
    text = report.markdown(context, summaries)
    report.append_json_line(jsonl, report.summary_json(context, summaries))
    files = {"jsonl": jsonl, "markdown": options.out_dir / f"{options.suite}-{stamp}.md"}
    files["markdown"].write_text(text)
    if options.chart:
        png = options.out_dir / f"{options.suite}-{stamp}.png"
        why_not = report.chart(context, summaries, png)
        if why_not:
            say(why_not)
        else:
            files["chart"] = png
    return SuiteResult(records, text, files)


@dataclass(frozen=True)
class _Stage:
    corpus: Corpus
    endpoint: Endpoint
    work: Path
    dest_root: Path


def _rounds(options: SuiteOptions, chosen: list[Contender], stage: _Stage, jsonl: Path,
            say: Callable[[str], None]) -> list[RunRecord]:
    # The small suite's trees are removed only at the end: removing thousands of files makes
    # ext4 skip those inodes one by one when it allocates inodes in the next minutes, which would
    # charge each contender for the previous one's clean-up (perf: up to half the next run's CPU;
    # see _settle_inodes). Their page cache is dropped after each run instead (_evict_page_cache).
    kept: list[Path] | None = [] if options.suite == "small" else None
    try:
        for _ in range(options.warmup):
            warm = _run_once(options, chosen[0], stage, -1, 0, kept, _settle_inodes(options, stage, say))
            say(f"warm-up {warm.contender} (not counted): " + ("ok" if warm.ok else warm.error))
        records = []
        for rnd in range(options.rounds):
            order = chosen if rnd % 2 == 0 else chosen[::-1]  # A B C, C B A, ...
            for position, contender in enumerate(order):
                record = _run_once(options, contender, stage, rnd, position, kept,
                                   _settle_inodes(options, stage, say))
                records.append(record)
                report.append_json_line(jsonl, record.as_json())
                say(_progress_line(options, record))
        return records
    finally:
        for tree in kept or ():
            shutil.rmtree(tree, ignore_errors=True)


def _settle_inodes(options: SuiteOptions, stage: _Stage, say: Callable[[str], None]) -> float:
    """Every run creates its files with ext4 in the same state (bench/settle.py: files removed in
    the last minutes make each new inode cost ~1 ms). Within a suite nothing many-filed is
    removed, so only the first runs can wait. Returns the last probe's CPU seconds per file
    created (0.0 without settling), which goes into the run's record."""
    if not options.settle:
        return 0.0
    state = settle_inodes(stage.dest_root)
    if not state.settled:
        say(f"warning: creating a file still costs {state.per_create * 1e6:.0f} us of CPU after "
            f"{state.waited:.0f} s (files removed just before the bench?); runs may be slowed")
    elif state.waited >= 1:
        say(f"waited {state.waited:.0f} s for ext4 to stop skipping recently removed inodes")
    return state.per_create


def _run_once(options: SuiteOptions, contender: Contender, stage: _Stage, rnd: int, position: int,
              kept: list[Path] | None, create_cost: float = 0.0) -> RunRecord:
    """One measured run. ``kept``: None removes the downloaded files at once; a list gets the
    run's own destination folder, to be removed by the caller later."""
    dest = stage.dest_root / (contender.name if kept is None else f"{contender.name}-{'warmup' if rnd < 0 else rnd}")
    scratch = stage.work / "runs" / f"{contender.name}-{rnd}"
    for folder in (dest, scratch):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    corpus = stage.corpus
    job = Job(contender=contender.name, suite=options.suite, endpoint_url=stage.endpoint.url,
              bucket=corpus.bucket, prefix=corpus.prefix, keys=tuple(o.key for o in corpus.objects),
              dest=str(dest), concurrency=options.concurrency)
    files = RunFiles(job=scratch / "job.json", result=scratch / "result.json", scratch=scratch)
    job.save(files.job)
    os.sync()  # earlier runs' dirty pages are written back now, not during this run
    if options.settle:
        settle_memory()
    measured = run_measured(RunSpec(argv=contender.command(job, files), env=child_env(), cwd=scratch,
                                    log_path=scratch / "output.log", timeout=_timeout(options, corpus)))
    timing = json.loads(files.result.read_text()) if files.result.exists() else {}
    error = ""
    if measured.timed_out:
        error = f"timed out after {_timeout(options, corpus):.0f}s"
    elif measured.exit_code != 0:
        error = measured.stderr_tail or f"exit status {measured.exit_code}"
    else:
        verdict = verify_destination(dest, corpus, options.suite)
        error = "" if verdict.ok else f"verification failed: {verdict.problem}"
    if kept is None:
        shutil.rmtree(dest, ignore_errors=True)
    else:
        kept.append(dest)
        _evict_page_cache(dest)
    shutil.rmtree(scratch, ignore_errors=True)
    return RunRecord(
        suite=options.suite, contender=contender.name, round=rnd, position=position, ok=not error, error=error,
        wall=timing.get("transfer_wall", measured.wall), process_wall=measured.wall,
        cpu_user=measured.cpu_user, cpu_sys=measured.cpu_sys, setup_cpu=timing.get("setup_cpu", 0.0),
        maxrss_kib=max(measured.maxrss_kib, timing.get("peak_rss_kib", 0)), bytes=corpus.total_bytes, files=len(corpus.objects),
        create_us=round(create_cost * 1e6, 1),
    )


def _evict_page_cache(folder: Path) -> None:
    """Drops a kept tree's pages from the page cache (its files stay): kept trees would
    otherwise fill the memory run after run, and later runs would pay for reclaiming it."""
    os.sync()  # dirty pages cannot be dropped
    for root, _dirs, names in os.walk(folder):
        for name in names:
            try:
                fd = os.open(os.path.join(root, name), os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _choose(options: SuiteOptions, say: Callable[[str], None]) -> tuple[list[Contender], dict]:
    candidates = registry.for_suite(options.suite)
    if options.only is not None:
        known = {c.name for c in candidates}
        unknown = [name for name in options.only if name not in known]
        if unknown:
            raise ValueError(f"no contender {', '.join(unknown)} in suite {options.suite!r}; "
                             f"choose from {', '.join(sorted(known))}")
        candidates = [c for c in candidates if c.name in options.only]
    chosen, skipped = [], {}
    for contender in candidates:
        why = contender.missing()
        if why:
            skipped[contender.name] = why
            say(f"skip {contender.name}: {why}")
        else:
            chosen.append(contender)
    if not chosen:
        raise ValueError("no contender can run here")
    return chosen, skipped


def _corpus_spec(options: SuiteOptions) -> CorpusSpec:
    prefix = "big/" if options.suite == "big" else "small/"
    return CorpusSpec(bucket=options.bucket, prefix=prefix, count=options.count, object_size=options.object_size)


def _timeout(options: SuiteOptions, corpus: Corpus) -> float:
    """Generous: a stuck contender must not hang the bench, a slow one must still finish."""
    if options.timeout is not None:
        return options.timeout
    return 60.0 + corpus.total_bytes / 20e6 + 0.05 * len(corpus.objects)


def _title(options: SuiteOptions, dest_root: Path) -> str:
    where = "tmpfs" if str(dest_root).startswith(str(TMPFS)) else "disk"
    return (f"{options.suite}: {options.count} x {format_size(options.object_size)}, server {options.server}, "
            f"destination {where}, {options.rounds} round{'s' if options.rounds > 1 else ''}, "
            f"{os.cpu_count()} CPUs")


def _progress_line(options: SuiteOptions, r: RunRecord) -> str:
    head = f"round {r.round + 1}/{options.rounds} {r.contender:<14}"
    if not r.ok:
        return f"{head} FAILED: {r.error}"
    speed = f"{r.files_per_s:8.0f} files/s" if options.suite == "small" else f"{r.mbps:8.0f} MB/s"
    probe = f"  create {r.create_us:.0f}us" if r.create_us else ""
    return f"{head} {speed}  wall {r.wall:6.2f}s  cpu {r.cpu:5.2f}s  rss {r.maxrss_mib:5.0f}MiB{probe}  verified"


@contextlib.contextmanager
def _work_dir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    path = Path(tempfile.mkdtemp(prefix="cosfast-bench-", dir="/var/tmp" if os.path.isdir("/var/tmp") else None))
    path.chmod(0o755)  # nginx's workers run as another user (nobody) when nginx starts as root
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _dest_root(dest: str, work: Path) -> Iterator[Path]:
    if dest == "disk":
        yield work / "dest"
    elif dest == "tmpfs":
        path = Path(tempfile.mkdtemp(prefix="cosfast-bench-", dir=TMPFS))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
    else:
        yield Path(dest)
