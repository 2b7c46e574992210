"""Starting and stopping the processes the bench owns (servers, contenders)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import bench
import cosfast

STOP_GRACE = 5.0


def source_roots() -> list[str]:
    """Folders that hold the ``bench`` and ``cosfast`` packages this harness runs from."""
    roots = []
    for package in (bench, cosfast):
        root = str(Path(package.__file__).resolve().parent.parent)
        if root not in roots:
            roots.append(root)
    return roots


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The harness's environment, with its own ``bench`` and ``cosfast`` first on the path."""
    env = dict(os.environ)
    paths = source_roots() + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra or {})
    return env


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it lingers; only ever the one process the bench started."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
