"""Byte sizes in and out: ``1GiB`` / ``256KiB`` / ``4096`` on the command line, MiB in tables."""
from __future__ import annotations

import re

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30

_UNITS = {"": 1, "b": 1, "k": KIB, "kib": KIB, "m": MIB, "mib": MIB, "g": GIB, "gib": GIB,
          "kb": 1000, "mb": 1000**2, "gb": 1000**3}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """``"1GiB"`` -> 1073741824; binary units for K/M/G(iB), decimal for KB/MB/GB."""
    match = _SIZE.match(text)
    unit = match and _UNITS.get(match.group(2).lower())
    if not match or unit is None:
        raise ValueError(f"not a size: {text!r} (examples: 1GiB, 256KiB, 4096)")
    return int(float(match.group(1)) * unit)


def format_size(size: int) -> str:
    """The shortest exact binary form: 1073741824 -> ``1GiB``, 262144 -> ``256KiB``."""
    for unit, name in ((GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit}{name}"
    return f"{size}B"
