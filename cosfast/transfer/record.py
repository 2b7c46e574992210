"""Resume records: what a download has finished, sealed so a torn or edited record is detected.

Format: one header line ``cosfast-resume 1 <xxh3-64 hex of the body>`` then a JSON body. Written
to a sibling temp file and renamed over the old record, so a crash leaves either the old record
or the new one, never a mix (and a torn one fails its digest). ``durable`` saves fsync the record
too; see cosfast/transfer/download.py for when the download asks for that."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Optional

import xxhash

from cosfast.transfer.localfs import unlink_quietly

MAGIC = "cosfast-resume"
FORMAT_VERSION = 1


class CorruptRecordError(ValueError):
    """The record file exists but is torn, edited or of another format: discard it."""


@dataclass(frozen=True)
class ObjectIdentity:
    """What pins one version of one object; a record for another identity is stale."""

    bucket: str
    key: str
    version_id: Optional[str]
    etag: str
    size: int
    last_modified: Optional[str]
    crc64: Optional[str]


@dataclass
class ResumeRecord:
    identity: ObjectIdentity
    part_size: int
    temp_path: str
    # part index -> (length, crc64 of its bytes)
    parts: dict[int, tuple[int, int]] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        body = json.dumps({
            "identity": asdict(self.identity),
            "part_size": self.part_size,
            "temp_path": self.temp_path,
            "parts": [[i, length, crc] for i, (length, crc) in sorted(self.parts.items())],
        }, separators=(",", ":"), sort_keys=True).encode()
        header = f"{MAGIC} {FORMAT_VERSION} {xxhash.xxh3_64_hexdigest(body)}\n".encode()
        return header + body

    @classmethod
    def from_bytes(cls, raw: bytes) -> "ResumeRecord":
        header, sep, body = raw.partition(b"\n")
        fields = header.decode("ascii", "replace").split(" ")
        if not sep or len(fields) != 3 or fields[0] != MAGIC:
            raise CorruptRecordError("not a cosfast resume record")
        if fields[1] != str(FORMAT_VERSION):
            raise CorruptRecordError(f"resume record format {fields[1]!r} is not {FORMAT_VERSION}")
        if xxhash.xxh3_64_hexdigest(body) != fields[2]:
            raise CorruptRecordError("resume record digest does not match its contents (torn or edited)")
        try:
            doc = json.loads(body)
            identity = ObjectIdentity(**doc["identity"])
            parts = {int(i): (int(length), int(crc)) for i, length, crc in doc["parts"]}
            record = cls(identity, int(doc["part_size"]), str(doc["temp_path"]), parts)
        # OverflowError: int(1e400); RecursionError: JSON nested deeper than the parser goes.
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:
            raise CorruptRecordError(f"resume record is malformed: {type(exc).__name__}: {exc}") from None
        if record.part_size <= 0 or any(length <= 0 or crc < 0 for length, crc in parts.values()):
            raise CorruptRecordError("resume record holds impossible sizes")
        return record

    def save(self, path: str, *, durable: bool = False) -> None:
        """Atomically replaces the record at ``path`` (fsynced first when ``durable``). The caller
        holds the destination's lock, so one process at a time saves; the temp name is fixed so
        that a temp left by a save that was killed is taken over by the next save, not left
        beside the record forever."""
        tmp = f"{path}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            data = self.to_bytes()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(tmp, path)
        except BaseException:
            unlink_quietly(tmp)
            raise

    @classmethod
    def load(cls, path: str) -> Optional["ResumeRecord"]:
        """The record at ``path``; None if there is none. CorruptRecordError if unreadable."""
        try:
            with open(path, "rb") as f:
                raw = f.read(64 * 1024 * 1024)
        except FileNotFoundError:
            return None
        return cls.from_bytes(raw)
