"""Splitting an object into ranged parts, with the official SDK's size rules."""
from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
# The SDK never uses parts under 1 MiB, whatever PartSize says.
MIN_PART_SIZE = MIB


@dataclass(frozen=True)
class Part:
    """One byte range [offset, offset + length) of the object; index counts from 0."""

    index: int
    offset: int
    length: int

    @property
    def end(self) -> int:
        """Offset one past the last byte."""
        return self.offset + self.length


def choose_part_size(object_size: int, part_size_mib: int, max_part_count: int) -> int:
    """Part size in bytes: PartSize MiB (at least 1 MiB), doubled while the parts would exceed
    MaxPartCount, as the SDK's ResumableDownLoader does."""
    size = max(part_size_mib * MIB, MIN_PART_SIZE)
    while size * max_part_count < object_size:
        size *= 2
    return size


def split(object_size: int, part_size: int) -> list[Part]:
    """Consecutive parts covering the object, in ascending offset order (the last may be short)."""
    return [
        Part(index, offset, min(part_size, object_size - offset))
        for index, offset in enumerate(range(0, object_size, part_size))
    ]
