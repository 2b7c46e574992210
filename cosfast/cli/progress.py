"""A one-line progress bar on stderr: bytes, rate, ETA and files done.

Only drawn when stderr is a terminal (and not --quiet / --json); otherwise ``NullProgress`` takes
every call and draws nothing. Callbacks come from the download thread; a lock keeps the counters
consistent if several threads report."""
from __future__ import annotations

import shutil
import threading
import time
from typing import Optional, TextIO

_REDRAW_SECONDS = 0.1
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(n: float) -> str:
    for unit in _UNITS:
        if abs(n) < 1024 or unit == _UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class NullProgress:
    """Takes the progress calls and shows nothing."""

    def set_total(self, total_bytes: Optional[int] = None, total_files: Optional[int] = None) -> None:
        pass

    def add_bytes(self, n: int) -> None:
        pass

    def file_done(self) -> None:
        pass

    def close(self) -> None:
        pass


class TerminalProgress(NullProgress):
    """``[#####     ]  47%  1.2 GiB/2.5 GiB  310.4 MiB/s  ETA 0:04  files 120/300``"""

    def __init__(self, stream: TextIO, label: str = "") -> None:
        self._stream = stream
        self._label = label
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._bytes = 0
        self._total_bytes: Optional[int] = None
        self._files = 0
        self._total_files: Optional[int] = None
        self._drawn_width = 0

    def set_total(self, total_bytes: Optional[int] = None, total_files: Optional[int] = None) -> None:
        with self._lock:
            if total_bytes is not None:
                self._total_bytes = total_bytes
            if total_files is not None:
                self._total_files = total_files
            self._draw()

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self._bytes += n
            self._draw()

    def file_done(self) -> None:
        with self._lock:
            self._files += 1
            self._draw()

    def close(self) -> None:
        with self._lock:
            self._draw(force=True)
            if self._drawn_width:
                self._stream.write("\n")
                self._stream.flush()
                self._drawn_width = 0

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < _REDRAW_SECONDS:
            return
        self._last_draw = now
        line = self._line(now - self._start)
        width = shutil.get_terminal_size((80, 24)).columns - 1
        line = line[:width]
        pad = max(0, self._drawn_width - len(line))
        self._stream.write("\r" + line + " " * pad)
        self._stream.flush()
        self._drawn_width = len(line)

    def _line(self, elapsed: float) -> str:
        rate = self._bytes / elapsed if elapsed > 0 else 0.0
        parts = [self._label] if self._label else []
        total = self._total_bytes
        if total:
            fraction = min(1.0, self._bytes / total)
            filled = int(fraction * 20)
            parts.append(f"[{'#' * filled}{' ' * (20 - filled)}] {fraction * 100:3.0f}%")
            parts.append(f"{human_bytes(self._bytes)}/{human_bytes(total)}")
        else:
            parts.append(human_bytes(self._bytes))
        parts.append(f"{human_bytes(rate)}/s")
        if total and rate > 0 and self._bytes < total:
            parts.append(f"ETA {human_duration((total - self._bytes) / rate)}")
        if self._total_files is not None:
            parts.append(f"files {self._files}/{self._total_files}")
        elif self._files:
            parts.append(f"files {self._files}")
        return "  ".join(parts)


def make_progress(stream: TextIO, *, enabled: bool, label: str = "") -> NullProgress:
    """A TerminalProgress when ``enabled`` and ``stream`` is a terminal, else a NullProgress."""
    isatty = getattr(stream, "isatty", None)
    if enabled and isatty is not None and isatty():
        return TerminalProgress(stream, label)
    return NullProgress()
