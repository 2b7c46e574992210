"""The objects a suite downloads: random bytes written once as plain files ``<root>/<bucket>/<key>``.

That layout is what nginx serves path-style as it is; the emulator is seeded from the same
files (servers.py). Every object's size and CRC-64/XZ are recorded here, so verification never
trusts a server's word about what it sent.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from cosfast.crc64 import Crc64

_CHUNK = 8 << 20


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    crc64: int


@dataclass(frozen=True)
class Corpus:
    root: Path  # holds <bucket>/<key> files
    bucket: str
    prefix: str  # the "folder" the small suite downloads; the big key's folder too
    objects: tuple[StoredObject, ...]

    @property
    def total_bytes(self) -> int:
        return sum(o.size for o in self.objects)

    def path(self, obj: StoredObject) -> Path:
        return self.root / self.bucket / obj.key

    def save_manifest(self, path: Path) -> None:
        """The key list for contenders that do not list the bucket (curl, aria2c, obstore)."""
        body = {"bucket": self.bucket, "prefix": self.prefix, "objects": [asdict(o) for o in self.objects]}
        path.write_text(json.dumps(body))


@dataclass(frozen=True)
class CorpusSpec:
    bucket: str
    prefix: str
    count: int
    object_size: int

    def object_keys(self) -> list[str]:
        if self.count == 1:
            return [f"{self.prefix}object-{self.object_size}.bin"]
        width = max(5, len(str(self.count - 1)))
        return [f"{self.prefix}{i:0{width}d}.bin" for i in range(self.count)]


def build_corpus(root: Path, spec: CorpusSpec) -> Corpus:
    """Writes ``spec.count`` random objects of ``spec.object_size`` bytes under ``root``."""
    objects = []
    for key in spec.object_keys():
        path = root / spec.bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        objects.append(StoredObject(key, spec.object_size, _write_random(path, spec.object_size)))
    return Corpus(root=root, bucket=spec.bucket, prefix=spec.prefix, objects=tuple(objects))


def _write_random(path: Path, size: int) -> int:
    crc = Crc64()
    with open(path, "wb", buffering=0) as f:
        left = size
        while left:
            chunk = os.urandom(min(left, _CHUNK))
            f.write(chunk)
            crc.update(chunk)
            left -= len(chunk)
    return crc.value
