"""One run's outcome, as it goes into the JSON lines and the statistics."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from bench.units import GIB, MIB


@dataclass(frozen=True)
class RunRecord:
    suite: str
    contender: str
    round: int
    position: int  # place in the round's order (interleaving: A B C, C B A, ...)
    ok: bool
    error: str  # one line; empty when ok
    wall: float  # transfer seconds (Python contenders time themselves; the rest: process wall)
    process_wall: float
    cpu_user: float  # process tree, whole run
    cpu_sys: float
    setup_cpu: float  # spent before the transfer started (interpreter, imports, client)
    maxrss_kib: int
    bytes: int
    files: int
    # CPU microseconds per file created by the inode probe just before the run (bench/settle.py);
    # 0: not probed. Well above ~25-60 means ext4 still skipped recently removed inodes.
    create_us: float = 0.0

    @property
    def cpu(self) -> float:
        """CPU seconds of the transfer: the tree's user+sys less the setup before the clock."""
        return max(0.0, self.cpu_user + self.cpu_sys - self.setup_cpu)

    @property
    def mbps(self) -> float:
        return self.bytes / 1e6 / self.wall if self.ok and self.wall > 0 else 0.0

    @property
    def files_per_s(self) -> float:
        return self.files / self.wall if self.ok and self.wall > 0 else 0.0

    @property
    def cpu_per_gib(self) -> float:
        return self.cpu / (self.bytes / GIB) if self.bytes else 0.0

    @property
    def maxrss_mib(self) -> float:
        return self.maxrss_kib * 1024 / MIB

    def as_json(self) -> dict:
        body = {"type": "run", **asdict(self)}
        body.update(cpu=round(self.cpu, 4), mbps=round(self.mbps, 2), files_per_s=round(self.files_per_s, 2),
                    cpu_per_gib=round(self.cpu_per_gib, 4), maxrss_mib=round(self.maxrss_mib, 1))
        return body
