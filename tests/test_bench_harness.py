"""Smoke tests of the side-by-side benchmark harness (bench/): it runs, verifies, reports.

No timing is asserted: speed lives in bench/README.md. The quick suites run cosfast and the
contenders that are always installed with the test extra (the official SDK, curl).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cosfast
from bench.corpus import CorpusSpec, build_corpus
from bench.verify import verify_destination

REPO = Path(cosfast.__file__).resolve().parent.parent


def run_bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path / "out"),
         "--work-dir", str(tmp_path / "work"), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False,
    )


def read_lines(out: Path, suite: str) -> tuple[list[dict], dict]:
    (jsonl,) = out.glob(f"{suite}-*.jsonl")
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    runs = [line for line in lines if line["type"] == "run"]
    (summary,) = [line for line in lines if line["type"] == "summary"]
    return runs, summary


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    "suite, contenders",
    [("big", ["cosfast", "sdk", "sdk-stream", "curl"]), ("small", ["cosfast", "sdk-recipe", "curl-Z"])],
)
def test_quick_suite_downloads_verifies_and_reports(tmp_path: Path, suite: str, contenders: list[str]) -> None:
    draw = suite == "big"  # drawing costs seconds: once is enough
    done = run_bench(tmp_path, "--suite", suite, "--contenders", ",".join(contenders), "--baseline", contenders[0],
                     *([] if draw else ["--no-chart"]))
    assert done.returncode == 0, done.stdout + done.stderr

    for name in contenders:
        assert f"| {name} |" in done.stdout  # the Markdown table, one row each
    assert done.stdout.count("verified") == len(contenders)  # one verified run per contender (1 round)
    assert "Versions:" in done.stdout

    runs, summary = read_lines(tmp_path / "out", suite)
    assert sorted(r["contender"] for r in runs) == sorted(contenders)
    assert all(r["ok"] and r["error"] == "" for r in runs)
    expected_files = 1 if suite == "big" else 50
    assert all(r["files"] == expected_files and r["bytes"] > 0 and r["wall"] > 0 for r in runs)
    assert all(r["cpu_user"] + r["cpu_sys"] > 0 and r["maxrss_kib"] > 0 for r in runs)
    by_name = {c["contender"]: c for c in summary["contenders"]}
    assert by_name[contenders[0]]["ratio"]["median"] == pytest.approx(1.0)  # the baseline against itself
    assert set(summary["versions"]) == set(contenders) | {"server"}
    assert list((tmp_path / "out").glob(f"{suite}-*.md"))
    drawn = bool(list((tmp_path / "out").glob(f"{suite}-*.png")))
    if draw and importlib.util.find_spec("matplotlib") is None:  # the bench extra is not installed
        assert "chart skipped: matplotlib is not installed" in done.stdout and not drawn
    else:
        assert drawn == draw
    # the same runs, tabled again against another baseline
    (jsonl,) = (tmp_path / "out").glob(f"{suite}-*.jsonl")
    last = contenders[-1]
    again = run_bench(tmp_path, "--from-jsonl", str(jsonl), "--baseline", last)
    assert again.returncode == 0, again.stderr
    assert f"| {last} speedup (paired) |" in again.stdout
    (row,) = [line for line in again.stdout.splitlines() if line.startswith(f"| {last} |")]
    assert "| 1.00x (1.00..1.00) |" in row
    # --quick does not settle, so no inode probe ran; lines written before the probe existed
    # (no create_us) are still read
    assert all(r["create_us"] == 0 for r in runs)
    old = tmp_path / "old.jsonl"
    old.write_text("".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "create_us"}) + "\n"
                           for line in jsonl.read_text().splitlines()))
    older = run_bench(tmp_path, "--from-jsonl", str(old), "--baseline", last)
    assert older.returncode == 0, older.stderr
    assert [line for line in older.stdout.splitlines() if line.startswith("| ")] == \
        [line for line in again.stdout.splitlines() if line.startswith("| ")]
    # the destination of every run is removed; the corpus stays in the kept work folder
    assert not any((tmp_path / "work" / "dest").rglob("*.bin"))


@pytest.mark.timeout(120)
def test_runs_that_overstay_are_killed_and_reported(tmp_path: Path) -> None:
    """A run that exceeds --timeout is killed; its row says why, the JSON says ok=false, the
    exit status is 1, and the harness itself finishes normally."""
    done = run_bench(tmp_path, "--suite", "big", "--contenders", "curl,sdk-stream", "--timeout", "0.001",
                     "--no-chart")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "| curl | curl -o FILE, one stream | failed: timed out" in done.stdout
    runs, _summary = read_lines(tmp_path / "out", "big")
    assert len(runs) == 2 and not any(r["ok"] for r in runs)


@pytest.mark.timeout(60)
def test_an_unreachable_endpoint_is_one_clear_line(tmp_path: Path) -> None:
    done = run_bench(tmp_path, "--suite", "big", "--contenders", "curl", "--endpoint-url", "http://127.0.0.1:9",
                     "--no-chart")
    assert done.returncode == 2
    assert done.stderr.startswith("cosfast bench: seeding http://127.0.0.1:9 failed")
    assert "Traceback" not in done.stderr


def test_unknown_contender_is_a_clear_error(tmp_path: Path) -> None:
    done = run_bench(tmp_path, "--suite", "small", "--contenders", "no-such-client")
    assert done.returncode == 2
    assert "no contender no-such-client" in done.stderr


def test_verification_catches_wrong_missing_and_stray_files(tmp_path: Path) -> None:
    corpus = build_corpus(tmp_path / "corpus", CorpusSpec("b-1250000000", "small/", 3, 1000))
    dest = tmp_path / "dest"
    shutil.copytree(tmp_path / "corpus" / "b-1250000000", dest)
    assert verify_destination(dest, corpus, "small").ok

    flipped = dest / corpus.objects[1].key
    data = bytearray(flipped.read_bytes())
    data[500] ^= 1
    flipped.write_bytes(bytes(data))
    verdict = verify_destination(dest, corpus, "small")
    assert not verdict.ok and "CRC-64" in verdict.problem

    flipped.unlink()
    assert "missing: small/00001.bin" in verify_destination(dest, corpus, "small").problem

    shutil.copy(tmp_path / "corpus" / "b-1250000000" / corpus.objects[1].key, flipped)
    (dest / "small" / "00002.bin.tmp").write_bytes(b"leftover")
    assert "unexpected: small/00002.bin.tmp" in verify_destination(dest, corpus, "small").problem


def test_peak_rss_follows_the_whole_process_tree(tmp_path: Path) -> None:
    """A contender whose memory is in a forked worker (cosfast's batch workers) is charged for it:
    the sampler sums the high-water marks of the process and its descendants."""
    from bench.measure import _HighWater, process_tree

    script = ("import os, time\n"
              "if os.fork() == 0:\n"
              "    block = bytearray(96 * 1024 * 1024)\n"  # touched: calloc'd pages count once written
              "    block[::4096] = b'x' * len(block[::4096])\n"
              "    time.sleep(2)\n"
              "    os._exit(0)\n"
              "os.wait()\n")
    proc = subprocess.Popen([sys.executable, "-c", script])
    sampler = _HighWater(proc.pid)
    sampler.start()
    try:
        deadline = time.monotonic() + 10
        while len(process_tree(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(process_tree(proc.pid)) == 2
    finally:
        proc.wait(timeout=30)
        sampler.stop()
    assert sampler.peak_kib > 96 * 1024


def test_progress_line_shows_the_inode_probe_when_there_was_one() -> None:
    from bench.record import RunRecord
    from bench.runner import _progress_line

    def record(create_us: float) -> RunRecord:
        return RunRecord(suite="small", contender="cosfast", round=0, position=0, ok=True, error="", wall=1.0,
                         process_wall=1.2, cpu_user=1.0, cpu_sys=0.5, setup_cpu=0.2, maxrss_kib=90 * 1024,
                         bytes=2000 * 256 * 1024, files=2000, create_us=create_us)

    class Options:
        suite, rounds = "small", 5

    assert "create 31us" in _progress_line(Options, record(31.4))
    assert "create" not in _progress_line(Options, record(0.0))
