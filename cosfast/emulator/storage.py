"""Buckets as folders, objects as data files with JSON sidecars, versions optional.

Layout under the root::

    <bucket>/bucket.json               flags (public_read, versioning) and creation time
    <bucket>/meta/<hh>/<sha256>.json   one sidecar per key: the key and its versions
    <bucket>/data/<hh>/<uuid>          one immutable data file per version

Object keys never become file names (a key may be ``a/../b``, end in ``/``, or be both ``a``
and the folder of ``a/b``); the sidecar is named by the key's hash instead. A data file is
never rewritten: a new version gets a new file and the old one is unlinked, so a GET already
streaming the old bytes (by sendfile, from its open descriptor) keeps sending them, as COS does.

All index changes happen under one lock: the Python seeding API runs in the caller's thread
while the server runs in its own.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from email.utils import formatdate
from pathlib import Path
from typing import TypeVar

from cosfast.crc64 import Crc64
from cosfast.emulator.errors import CosError

T = TypeVar("T")

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,48}-[0-9]{1,20}$")

#: Request headers an object keeps from its PUT and sends back on GET/HEAD.
STORED_HEADERS = (
    "Cache-Control",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Expires",
)

DEFAULT_CONTENT_TYPE = "application/octet-stream"
_COPY_CHUNK = 1 << 20


def http_date(epoch: float) -> str:
    """RFC 1123 date, whole seconds, as COS sends Last-Modified."""
    return formatdate(int(epoch), usegmt=True)


@dataclass(frozen=True)
class ObjectInfo:
    """One stored version of an object, as GET/HEAD describe it."""

    bucket: str
    key: str
    etag: str  # quoted hex MD5, as COS sends it
    size: int
    crc64: int | None  # None for objects stored without CRC (as COS's old objects)
    mtime: float
    version_id: str | None
    content_type: str
    path: str  # the data file; read-only for callers
    headers: dict = field(default_factory=dict)  # stored standard headers (STORED_HEADERS)
    metadata: dict = field(default_factory=dict)  # "x-cos-meta-*" (lower-case names) -> value
    delete_marker: bool = False

    @property
    def last_modified(self) -> str:
        """The ``Last-Modified`` header value."""
        return http_date(self.mtime)


@dataclass
class Bucket:
    name: str
    public_read: bool = False
    versioning: bool = False
    created: float = 0.0
    # key -> versions, oldest first; the last one is current (maybe a delete marker)
    objects: dict = field(default_factory=dict)
    _sorted: list | None = None

    def live_keys(self) -> list[str]:
        """Keys whose current version is not a delete marker, sorted (cached)."""
        if self._sorted is None:
            self._sorted = sorted(k for k, v in self.objects.items() if not v[-1].delete_marker)
        return self._sorted


class ObjectWriter:
    """Receives an object's bytes into a fresh data file, hashing MD5 and CRC-64 on the way."""

    def __init__(self, data_dir: Path) -> None:
        self.name = uuid.uuid4().hex
        self._final = data_dir / self.name[:2] / self.name
        self._final.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self._final.with_name(".tmp-" + self.name)
        self._file = open(self._tmp, "wb", buffering=0)
        self._md5 = hashlib.md5()
        self._crc = Crc64()
        self.size = 0

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        self._file.write(chunk)
        self._md5.update(chunk)
        self._crc.update(chunk)
        self.size += len(chunk)

    def finish(self) -> tuple[Path, str, int]:
        """Closes and moves the file into place; returns (path, md5 hex, crc64)."""
        self._file.close()
        os.replace(self._tmp, self._final)
        return self._final, self._md5.hexdigest(), self._crc.value

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class PutOptions:
    content_type: str | None = None
    headers: dict | None = None  # any of STORED_HEADERS
    metadata: dict | None = None  # "x-cos-meta-*" or bare names
    with_crc: bool = True
    content_md5: str | None = None  # base64 MD5 the body must match (HTTP PUT)


_version_seq = itertools.count(1)


def _new_version_id() -> str:
    raw = f"{time.time_ns()}{next(_version_seq):06d}".encode()
    return base64.b64encode(raw).decode().rstrip("=")


def _normalise_metadata(metadata: dict | None) -> dict:
    out = {}
    for name, value in (metadata or {}).items():
        lower = name.lower()
        out[lower if lower.startswith("x-cos-meta-") else "x-cos-meta-" + lower] = str(value)
    return out


def _normalise_headers(headers: dict | None) -> dict:
    by_lower = {h.lower(): h for h in STORED_HEADERS}
    out = {}
    for name, value in (headers or {}).items():
        canonical = by_lower.get(name.lower())
        if canonical is None:
            raise ValueError(f"header {name!r} is not one an object stores: {STORED_HEADERS}")
        out[canonical] = str(value)
    return out


class Storage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._buckets: dict[str, Bucket] = {}
        self._load()

    # -- buckets -------------------------------------------------------------------------------

    def create_bucket(
        self,
        name: str,
        *,
        public_read: bool = False,
        versioning: bool = False,
        exist_ok: bool = True,
    ) -> Bucket:
        if not BUCKET_NAME.match(name):
            raise CosError(
                "InvalidBucketName",
                f"bucket {name!r} is not <name>-<appid> (lower-case letters, digits, '-')",
            )
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is not None and not exist_ok:
                raise CosError("BucketAlreadyOwnedByYou")
            if bucket is None:
                bucket = Bucket(name, created=time.time())
                self._buckets[name] = bucket
            bucket.public_read = public_read
            bucket.versioning = versioning
            self._write_bucket_file(bucket)
            return bucket

    def bucket(self, name: str) -> Bucket:
        with self._lock:
            bucket = self._buckets.get(name)
        if bucket is None:
            raise CosError("NoSuchBucket")
        return bucket

    def has_bucket(self, name: str) -> bool:
        with self._lock:
            return name in self._buckets

    def bucket_names(self) -> list[str]:
        with self._lock:
            return sorted(self._buckets)

    def delete_bucket(self, name: str) -> None:
        with self._lock:
            bucket = self.bucket(name)
            if bucket.objects:
                raise CosError("BucketNotEmpty")
            del self._buckets[name]
            shutil.rmtree(self.root / name, ignore_errors=True)

    # -- objects -------------------------------------------------------------------------------

    def writer(self, bucket: str) -> ObjectWriter:
        self.bucket(bucket)  # raises NoSuchBucket before any byte is received
        return ObjectWriter(self.root / bucket / "data")

    def put_stream(
        self, bucket: str, key: str, chunks: Iterable[bytes], options: PutOptions
    ) -> ObjectInfo:
        writer = self.writer(bucket)
        try:
            for chunk in chunks:
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        return self.commit(bucket, key, writer, options)

    def commit(
        self, bucket_name: str, key: str, writer: ObjectWriter, options: PutOptions
    ) -> ObjectInfo:
        """Publishes what ``writer`` received as the current version of ``key``."""
        try:
            if not key:
                raise ValueError("an object key must not be empty")
            headers = _normalise_headers(options.headers)
            metadata = _normalise_metadata(options.metadata)
        except ValueError:
            writer.abort()
            raise
        path, md5_hex, crc = writer.finish()
        if options.content_md5 is not None:
            try:
                _check_md5(options.content_md5, md5_hex)
            except CosError:
                path.unlink(missing_ok=True)
                raise
        with self._lock:
            if not self.has_bucket(bucket_name):  # deleted while the bytes were arriving
                path.unlink(missing_ok=True)
                raise CosError("NoSuchBucket")
            bucket = self.bucket(bucket_name)
            info = ObjectInfo(
                bucket=bucket_name,
                key=key,
                etag=f'"{md5_hex}"',
                size=writer.size,
                crc64=crc if options.with_crc else None,
                mtime=time.time(),
                version_id=_new_version_id() if bucket.versioning else None,
                content_type=options.content_type or DEFAULT_CONTENT_TYPE,
                path=str(path),
                headers=headers,
                metadata=metadata,
            )
            return self._add_version(bucket, info)

    def lookup(self, bucket_name: str, key: str, version_id: str | None = None) -> ObjectInfo:
        """The current version (or the named one); NoSuchKey / NoSuchVersion otherwise."""
        with self._lock:
            versions = self.bucket(bucket_name).objects.get(key)
            if version_id is None:
                if not versions or versions[-1].delete_marker:
                    raise CosError("NoSuchKey")
                return versions[-1]
            for info in versions or ():
                if info.version_id == version_id and not info.delete_marker:
                    return info
        raise CosError("NoSuchVersion")

    def listing(
        self,
        bucket_name: str,
        page_of: Callable[[list[str]], T],
        keys_of: Callable[[T], Iterable[str]],
    ) -> tuple[T, dict[str, ObjectInfo]]:
        """``page_of(sorted live keys)`` and the current version of each of its ``keys_of``,
        under one lock: a concurrent delete cannot leave a listed key without its object."""
        with self._lock:
            bucket = self.bucket(bucket_name)
            page = page_of(bucket.live_keys())
            return page, {key: bucket.objects[key][-1] for key in keys_of(page)}

    def delete(self, bucket_name: str, key: str) -> ObjectInfo | None:
        """Deletes the current version (a delete marker in a versioned bucket); None if absent."""
        with self._lock:
            bucket = self.bucket(bucket_name)
            versions = bucket.objects.get(key)
            if not versions or versions[-1].delete_marker:
                return None
            current = versions[-1]
            if bucket.versioning:
                marker = replace(
                    current,
                    version_id=_new_version_id(),
                    mtime=time.time(),
                    delete_marker=True,
                    size=0,
                )
                self._add_version(bucket, marker)
            else:
                del bucket.objects[key]
                bucket._sorted = None
                self._sidecar(bucket_name, key).unlink(missing_ok=True)
                Path(current.path).unlink(missing_ok=True)
            return current

    # -- internals -----------------------------------------------------------------------------

    def _add_version(self, bucket: Bucket, info: ObjectInfo) -> ObjectInfo:
        versions = bucket.objects.get(info.key)
        if versions is None or versions[-1].delete_marker != info.delete_marker:
            bucket._sorted = None
        if bucket.versioning:
            replaced: list[ObjectInfo] = []
            versions = (versions or []) + [info]
        else:
            replaced = versions or []
            versions = [info]
        bucket.objects[info.key] = versions
        self._write_sidecar(bucket.name, info.key, versions)
        for old in replaced:
            if old.path != info.path:
                Path(old.path).unlink(missing_ok=True)
        return info

    def _sidecar(self, bucket: str, key: str) -> Path:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return self.root / bucket / "meta" / digest[:2] / (digest + ".json")

    def _write_sidecar(self, bucket: str, key: str, versions: list[ObjectInfo]) -> None:
        path = self._sidecar(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"key": key, "versions": [asdict(v) for v in versions]}
        _write_json_atomically(path, body)

    def _write_bucket_file(self, bucket: Bucket) -> None:
        folder = self.root / bucket.name
        folder.mkdir(parents=True, exist_ok=True)
        body = {
            "public_read": bucket.public_read,
            "versioning": bucket.versioning,
            "created": bucket.created,
        }
        _write_json_atomically(folder / "bucket.json", body)

    def _load(self) -> None:
        for bucket_file in sorted(self.root.glob("*/bucket.json")):
            flags = json.loads(bucket_file.read_text())
            bucket = Bucket(bucket_file.parent.name, **flags)
            for sidecar in (bucket_file.parent / "meta").glob("*/*.json"):
                body = json.loads(sidecar.read_text())
                bucket.objects[body["key"]] = [ObjectInfo(**v) for v in body["versions"]]
            self._buckets[bucket.name] = bucket


def _write_json_atomically(path: Path, body: dict) -> None:
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(body, ensure_ascii=False))
    os.replace(tmp, path)


def _check_md5(content_md5: str, md5_hex: str) -> None:
    try:
        sent = base64.b64decode(content_md5, validate=True).hex()
    except ValueError:
        raise CosError("InvalidDigest") from None
    if sent != md5_hex:
        raise CosError("BadDigest")


def copy_file_chunks(path: str | os.PathLike) -> Iterable[bytes]:
    """A file's bytes in bounded chunks (seeding large objects without holding them)."""
    with open(path, "rb") as f:
        while chunk := f.read(_COPY_CHUNK):
            yield chunk
