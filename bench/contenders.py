"""Who competes: each contender, the suites it runs in, whether it is installed, its version,
and the command line of one run.

Python contenders run ``python -m bench.child`` (bench/child.py holds what each one does);
curl and aria2c run as themselves, fed a list file for the small suite.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench.job import Job

ARIA2_MAX_CONNECTIONS = 16  # aria2c refuses -x above 16


@dataclass(frozen=True)
class RunFiles:
    job: Path  # the Job, as JSON
    result: Path  # a Python contender's transfer time, as JSON
    scratch: Path  # a folder for list files


@dataclass(frozen=True)
class Contender:
    name: str
    suite: str
    description: str
    requires: str  # a Python module or an executable
    command: Callable[[Job, RunFiles], list[str]]

    @property
    def in_python(self) -> bool:
        return self.command is _python_child

    def missing(self) -> str | None:
        """Why it cannot run here, or None."""
        if self.in_python:
            if importlib.util.find_spec(self.requires) is None:
                return f"Python package {self.requires!r} is not installed"
            return None
        return None if shutil.which(self.requires) else f"{self.requires} is not on PATH"

    def version(self) -> str:
        return _VERSIONS[self.requires]()


def _python_child(job: Job, files: RunFiles) -> list[str]:
    return [sys.executable, "-m", "bench.child", str(files.job), str(files.result)]


def _curl_one(job: Job, files: RunFiles) -> list[str]:
    return ["curl", "-sS", "-f", "-o", job.big_dest(), job.object_url(job.keys[0])]


def _curl_parallel(job: Job, files: RunFiles) -> list[str]:
    config = files.scratch / "curl.cfg"
    config.write_text("".join(f'url = "{job.object_url(k)}"\noutput = "{job.small_dest(k)}"\n' for k in job.keys))
    return ["curl", "-sS", "-f", "-Z", "--parallel-max", str(job.concurrency), "--create-dirs", "-K", str(config)]


_ARIA2_COMMON = ["aria2c", "-q", "--allow-overwrite=true", "--auto-file-renaming=false",
                 "--console-log-level=error", "--summary-interval=0", "--max-tries=1"]


def _aria2_ranges(job: Job, files: RunFiles) -> list[str]:
    split = str(min(job.concurrency, ARIA2_MAX_CONNECTIONS))
    dest = Path(job.big_dest())
    return _ARIA2_COMMON + ["-x", split, "-s", split, "--file-allocation=falloc",
                            "-d", str(dest.parent), "-o", dest.name, job.object_url(job.keys[0])]


def _aria2_many(job: Job, files: RunFiles) -> list[str]:
    listing = files.scratch / "aria2.txt"
    listing.write_text("".join(f"{job.object_url(k)}\n  out={k}\n" for k in job.keys))
    return _ARIA2_COMMON + ["-j", str(job.concurrency), "-x", "1", "--file-allocation=none",
                            "-d", job.dest, "-i", str(listing)]


CONTENDERS: tuple[Contender, ...] = (
    Contender("cosfast", "big", "cosfast download_file, defaults", "cosfast", _python_child),
    Contender("cosfast-direct", "big", "cosfast download_file, DirectIO=True (stages with O_DIRECT)", "cosfast",
              _python_child),
    Contender("cosfast-buffered", "big", "cosfast download_file, DirectIO=False (every stage through the page cache)",
              "cosfast", _python_child),
    Contender("cosfast-keep", "big", "cosfast download_file, KeepPageCache=True (no page recycling)", "cosfast",
              _python_child),
    Contender("cosfast-drop", "big", "cosfast download_file, KeepPageCache=False (always recycling pages)",
              "cosfast", _python_child),
    Contender("sdk", "big", "official SDK download_file, defaults (MAXThread=5)", "qcloud_cos", _python_child),
    Contender("sdk-t16", "big", "official SDK download_file, MAXThread=16", "qcloud_cos", _python_child),
    Contender("sdk-stream", "big", "official SDK get_object + get_stream_to_file", "qcloud_cos", _python_child),
    Contender("boto3", "big", "boto3 download_file, defaults, path-style", "boto3", _python_child),
    Contender("obstore", "big", "obstore get_range, {c} ranges in flight", "obstore", _python_child),
    Contender("curl", "big", "curl -o FILE, one stream", "curl", _curl_one),
    Contender("aria2c", "big", "aria2c -x{c} -s{c}", "aria2c", _aria2_ranges),
    Contender("cosfast", "small", "cosfast download_dir, defaults", "cosfast", _python_child),
    Contender("cosfast-keep", "small", "cosfast download_dir, KeepPageCache=True (no page recycling)", "cosfast",
              _python_child),
    Contender("cosfast-drop", "small", "cosfast download_dir, KeepPageCache=False (always recycling pages)",
              "cosfast", _python_child),
    Contender("sdk-recipe", "small", "official SDK recipe: list + SimpleThreadPool() (5) download_file",
              "qcloud_cos", _python_child),
    Contender("sdk-recipe-10", "small", "official SDK recipe with SimpleThreadPool(10)", "qcloud_cos",
              _python_child),
    Contender("boto3", "small", "boto3 list + download_file in {c} threads", "boto3", _python_child),
    Contender("obstore", "small", "obstore get in {c} threads (key list given)", "obstore", _python_child),
    Contender("curl-Z", "small", "curl -Z --parallel-max {c} (URL list given)", "curl", _curl_parallel),
    Contender("aria2c", "small", "aria2c -j{c} -i LIST (URL list given)", "aria2c", _aria2_many),
)


def for_suite(suite: str) -> list[Contender]:
    return [c for c in CONTENDERS if c.suite == suite]


def _dist_version(dist: str) -> Callable[[], str]:
    def version() -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return version


def _cosfast_version() -> str:
    import cosfast

    return f"{cosfast.__version__} ({cosfast.backend})"


def _boto3_version() -> str:
    return f"{_dist_version('boto3')()} (s3transfer {_dist_version('s3transfer')()})"


def _tool_version(binary: str) -> Callable[[], str]:
    def version() -> str:
        if shutil.which(binary) is None:
            return "not installed"
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
        words = out.split("\n", 1)[0].split()  # "curl 7.88.1 (...)", "aria2 version 1.36.0"
        return next((w for w in words if w[:1].isdigit()), "unknown")

    return version


_VERSIONS: dict[str, Callable[[], str]] = {
    "cosfast": _cosfast_version,
    "qcloud_cos": _dist_version("cos-python-sdk-v5"),
    "boto3": _boto3_version,
    "obstore": _dist_version("obstore"),
    "curl": _tool_version("curl"),
    "aria2c": _tool_version("aria2c"),
}
