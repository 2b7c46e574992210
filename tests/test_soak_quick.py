"""The fault soak and the crash-restart loop (bench/soak.py, bench/crash_loop.py) in their
quick sizes, as CI runs them: each in its own process, judged by its exit status and its
report (see docs/RELIABILITY.md for the full runs and their figures)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cosfast

REPO_ROOT = Path(cosfast.__file__).resolve().parent.parent


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "bench" / script), *args],
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=170, check=False)


@pytest.mark.timeout(180)
def test_quick_soak_loses_no_byte_and_leaks_nothing():
    result = run_bench("soak.py", "--quick")
    report = result.stdout
    assert result.returncode == 0, report + result.stderr
    assert re.search(r"^bytes lost\s+0$", report, re.MULTILINE), report
    assert "result: PASS" in report and "FAIL" not in report
    downloads = int(re.search(r"soak: (\d+) download_file calls", report).group(1))
    verified = int(re.search(r"^  verified\s+(\d+)$", report, re.MULTILINE).group(1))
    assert downloads >= 20 and verified >= downloads // 2, report
    assert re.search(r"^  download_dir: verified\s+[1-9]", report, re.MULTILINE), report
    # The faults really fired: the soak is not a run of clean downloads.
    for kind in ("drop", "flip", "slow", "status 503"):
        assert re.search(rf"^  {kind}\s+[1-9]", report, re.MULTILINE), (kind, report)


@pytest.mark.timeout(180)
def test_quick_crash_loop_ends_byte_exact_within_the_waste_bound():
    result = run_bench("crash_loop.py", "--quick")
    report = result.stdout
    assert result.returncode == 0, report + result.stderr
    assert "result: PASS" in report and "FAIL" not in report
    kills = int(re.search(r"total: (\d+) kills", report).group(1))
    assert kills >= 1, report
    assert "byte-exact" in report
