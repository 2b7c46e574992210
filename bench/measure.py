"""One contender run as a subprocess: wall time, CPU of its process tree, peak RSS.

``os.wait4`` returns the child's resource usage including every descendant it waited for
(threads are part of the process), so user+sys covers the whole tree.

Peak RSS is NOT taken from ``ru_maxrss``: Linux carries the high-water mark of the memory a
process had before ``execve`` into it, and a forked child starts with the parent's resident
pages counted, so every child of this ~40 MiB harness would report at least ~40 MiB. Instead
the harness samples ``VmHWM`` (the high-water mark of the running program's own memory) from
/proc while the child runs; Python contenders also report their own VmHWM at the end (exact).
"""
from __future__ import annotations

import glob
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SAMPLE_EVERY = 0.02


@dataclass(frozen=True)
class Measurement:
    exit_code: int
    wall: float  # seconds from spawn to exit
    cpu_user: float
    cpu_sys: float
    maxrss_kib: int  # VmHWM sampled every SAMPLE_EVERY seconds (0 if it never ran that long)
    timed_out: bool
    stderr_tail: str

    @property
    def cpu(self) -> float:
        return self.cpu_user + self.cpu_sys


@dataclass(frozen=True)
class RunSpec:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path  # stdout and stderr of the run
    timeout: float


def run_measured(spec: RunSpec) -> Measurement:
    with open(spec.log_path, "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(spec.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=spec.env, cwd=spec.cwd)
        killed = threading.Event()
        watchdog = threading.Timer(spec.timeout, _kill, args=(proc, killed))
        watchdog.start()
        high_water = _HighWater(proc.pid)
        high_water.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            watchdog.cancel()
            high_water.stop()
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4; Popen must not wait again
    return Measurement(
        exit_code=proc.returncode,
        wall=wall,
        cpu_user=usage.ru_utime,
        cpu_sys=usage.ru_stime,
        maxrss_kib=high_water.peak_kib,
        timed_out=killed.is_set(),
        stderr_tail=_last_line(spec.log_path),
    )


class _HighWater(threading.Thread):
    """Follows the VmHWM of a process and of its descendants (cosfast's batch workers) until told
    to stop. The peak is the sum of every process's own mark: an upper bound, since their peaks
    need not coincide and forked workers share pages. A mark only rises, so the last reading
    before a process exits misses at most the final SAMPLE_EVERY seconds of its growth."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self._pid = pid
        self._done = threading.Event()
        self._marks: dict[int, int] = {}

    @property
    def peak_kib(self) -> int:
        return sum(self._marks.values())

    def run(self) -> None:
        while not self._done.is_set():
            for pid in process_tree(self._pid):
                self._marks[pid] = max(self._marks.get(pid, 0), vm_hwm_kib(f"/proc/{pid}/status"))
            self._done.wait(SAMPLE_EVERY)

    def stop(self) -> None:
        self._done.set()
        self.join()


def process_tree(pid: int) -> list[int]:
    """``pid`` and its living descendants (from /proc/PID/task/TID/children)."""
    tree, index = [pid], 0
    while index < len(tree):
        for task in glob.glob(f"/proc/{tree[index]}/task/*/children"):
            try:
                with open(task) as f:
                    tree.extend(int(child) for child in f.read().split())
            except OSError:
                pass
        index += 1
    return tree


def vm_hwm_kib(status_path: str = "/proc/self/status") -> int:
    """The VmHWM line of a /proc status file, in KiB; 0 once the process has exited."""
    try:
        with open(status_path) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _kill(proc: subprocess.Popen, killed: threading.Event) -> None:
    killed.set()
    proc.kill()


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:500] if lines else ""
