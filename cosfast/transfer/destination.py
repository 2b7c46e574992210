"""The local side of a download: where its files go, the lock that keeps a second download to
the same destination out, the CRC-64 check, and publication (the rename onto the destination).
Shared by both kinds of transfer: one GET (cosfast.transfer.single) and ranged parts
(cosfast.transfer.download)."""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import stat
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional

from cosfast import partwriter
from cosfast.transfer.errors import ObjectChangedError
from cosfast.transfer.localfs import unlink_quietly
from cosfast.transfer.record import ObjectIdentity

logger = logging.getLogger("cosfast.download")

# Names longer than this get a hashed temp name, so ".<name>.cosfast.tmp" stays under NAME_MAX.
_MAX_PLAIN_NAME = 200
# Times to retry taking the destination lock when its file was replaced under us.
_LOCK_ATTEMPTS = 100


class DownloadError(Exception):
    """A download failed for a reason that is not a transfer error (checks, locks, local files)."""


class CrcMismatchError(DownloadError):
    """The bytes received do not have the CRC-64 the server announced."""


class DownloadLockedError(DownloadError):
    """Another download to the same destination is running."""


class UnverifiedDownloadWarning(UserWarning):
    """EnableCRC=True, but the object has no x-cos-hash-crc64ecma to compare with."""


@dataclass(frozen=True)
class LocalPaths:
    """Where one download keeps its files; temp and lock sit next to the destination so the
    final rename stays on one file system."""

    dest: str
    temp: str
    lock: str
    record: str

    @classmethod
    def for_destination(cls, dest: str, identity: ObjectIdentity, record_dir: Optional[str]) -> "LocalPaths":
        dest = os.path.abspath(dest)
        base = _stem_path(dest)
        if record_dir:
            digest = hashlib.md5(dest.encode("utf-8", "surrogateescape")).hexdigest()
            key_digest = hashlib.md5(identity.key.encode("utf-8", "surrogateescape")).hexdigest()
            record = os.path.join(record_dir, f"{identity.bucket}_{key_digest}.{digest}.cosfast-resume")
        else:
            record = base + ".resume"
        return cls(dest=dest, temp=base + ".tmp", lock=base + ".lock", record=record)


class DestinationLock:
    """An exclusive flock on a lock file beside the destination: a second download to the same
    file is refused instead of interleaving writes into the same temp file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: Optional[int] = None

    def acquire(self) -> None:
        for _attempt in range(_LOCK_ATTEMPTS):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise DownloadLockedError(
                    f"another download to {self.path[:-len('.lock')]!r} is running (lock {self.path!r} is held)"
                ) from None
            # The holder unlinks the lock file before releasing it. If it did so between our open
            # and our flock, we hold a lock on a file that no longer has the name, and a third
            # download can lock a new file under that name: only a lock on the file the name
            # still points to counts.
            if _same_file(fd, self.path):
                self._fd = fd
                return
            os.close(fd)
        raise DownloadLockedError(f"the lock {self.path!r} kept changing hands; another download to "
                                  f"{self.path[:-len('.lock')]!r} is running")

    @property
    def held(self) -> bool:
        return self._fd is not None

    @property
    def temp_fd(self) -> int:
        """-1: the lock file is not the temp file."""
        return -1

    def release(self) -> None:
        """Idempotent; only a held lock's file is removed."""
        if self._fd is None:
            return
        # Unlink before unlocking, so that a download that opened this file before the unlink
        # sees (by _same_file) that its lock does not count.
        unlink_quietly(self.path)
        os.close(self._fd)
        self._fd = None


class TempFileLock:
    """For single-GET downloads: the flock is taken on the temp file itself, so no lock file is
    created and deleted per object (in a batch of small objects that costs more CPU than the
    download). The temp's name is fixed, so a second download to the same destination opens the
    same file and is refused. A lock won on an inode that was meanwhile renamed into place or
    removed (the previous holder just finished) is dropped and taken again on the current one."""

    _ATTEMPTS = 3

    def __init__(self, temp_path: str, dest: str) -> None:
        self.path = temp_path
        self._dest = dest
        self._fd: Optional[int] = None

    def acquire(self) -> None:
        for _ in range(self._ATTEMPTS):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise DownloadLockedError(f"another download to {self._dest!r} is running "
                                          f"(it holds {self.path!r})") from None
            if _same_file(fd, self.path):
                self._fd = fd
                return
            os.close(fd)
        raise DownloadLockedError(f"{self.path!r} keeps changing: another download to {self._dest!r} is running")

    @property
    def held(self) -> bool:
        return self._fd is not None

    @property
    def temp_fd(self) -> int:
        """The locked descriptor of the temp file: the TempFile writes through a duplicate of it
        instead of opening the path a second time."""
        return -1 if self._fd is None else self._fd

    def release(self) -> None:
        """Idempotent. The temp file itself is renamed or removed by the caller."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Settlement:
    """How a transfer ends, the part both kinds share: ``failed`` (what the engine checks to
    drop the transfer's other jobs) is set on the first final failure, ``error`` and ``settled``
    once it is over, and ``on_settled(transfer)`` is called exactly once."""

    def __init__(self, on_settled: Optional[Callable[[Any], None]]) -> None:
        self.on_settled = on_settled
        self.failed: Optional[BaseException] = None
        self.error: Optional[BaseException] = None
        self.settled = False

    def _settle(self, error: Optional[BaseException]) -> None:
        self.error = error
        self.failed = error
        self.settled = True
        if self.on_settled is not None:
            self.on_settled(self)


def _same_file(fd: int, path: str) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _stem_path(dest: str) -> str:
    """``dest``'s folder joined with the stem of its temp, lock and record names."""
    folder, name = os.path.split(dest)
    if not name:
        raise DownloadError(f"destination {dest!r} names a folder, not a file")
    stem = f".{name}.cosfast" if len(name) <= _MAX_PLAIN_NAME else \
        f".cosfast-{hashlib.sha256(name.encode('utf-8', 'surrogateescape')).hexdigest()[:32]}"
    return os.path.join(folder, stem)


def temp_path_for(dest: str) -> str:
    """The temp file a download to the absolute path ``dest`` writes before its rename."""
    return _stem_path(dest) + ".tmp"


def lock_path_for(dest: str) -> str:
    """The lock file of a download that has no temp file of its own to lock."""
    return _stem_path(dest) + ".lock"


def folder_in_the_way(dest: str) -> str:
    """Why a download to ``dest``, which is a folder, is refused."""
    return f"destination {dest!r} is a folder"


def check_not_folder(dest: str) -> None:
    """Refuses a destination that is a folder (one stat)."""
    try:
        if stat.S_ISDIR(os.stat(dest).st_mode):
            raise DownloadError(folder_in_the_way(dest))
    except (FileNotFoundError, NotADirectoryError):
        pass


def acquire_lock(lock: "DestinationLock | TempFileLock", dest: str) -> None:
    """Takes ``lock``; a missing destination folder is a clear error."""
    try:
        lock.acquire()
    except (FileNotFoundError, NotADirectoryError):
        raise DownloadError(f"destination folder {os.path.dirname(dest)!r} does not exist") from None


def check_crc(key: str, crc: int, expected: Optional[str], enable_crc: bool, dest: str) -> None:
    """Compares the CRC-64 of the bytes received with ``expected`` (the HEAD's or a GET response's
    x-cos-hash-crc64ecma). Without one, EnableCRC=True warns (UnverifiedDownloadWarning)."""
    if expected is None:
        if enable_crc:
            message = (f"{key!r} has no x-cos-hash-crc64ecma (objects uploaded before COS computed "
                       f"CRC-64 have none), so {dest!r} was checked for length and ETag but not for CRC")
            logger.warning(message)
            warnings.warn(message, UnverifiedDownloadWarning, stacklevel=5)
        return
    if str(crc) != expected.strip():
        raise CrcMismatchError(
            f"CRC-64 of the bytes received for {key!r} is {crc}, the server announced "
            f"{expected}; {dest!r} was not written")


def publish(temp: "partwriter.TempFile", temp_path: str, dest: str, *, fsync: bool, mtime: Optional[float]) -> None:
    """Closes a verified temp file and renames it onto ``dest`` (optionally synced first, and with
    the object's mtime). Raises OSError; the caller cleans up."""
    if fsync:
        temp.fsync()
    if mtime is not None:
        os.utime(temp.fd, (mtime, mtime))  # by descriptor: no lookup of the path
    temp.close()
    if temp_path != dest:
        os.replace(temp_path, dest)


def explain_failure(error: BaseException, identity: ObjectIdentity, dest: str) -> BaseException:
    """The error a failed transfer settles with: If-Match failing becomes a sentence that names
    the object and says the destination was left alone."""
    if isinstance(error, ObjectChangedError):
        return ObjectChangedError(
            f"{identity.key!r} changed on the server during the download (ETag {identity.etag} "
            f"no longer matches); nothing was written to {dest!r}",
            status=error.status, headers=error.headers, body=error.body)
    return error


def progress_reporter(callback: Optional[Callable[[int, int], None]], total: int,
                      already: int) -> Optional[Callable[[int], None]]:
    """Adapts the engine's byte deltas to the SDK's progress_callback(consumed, total)."""
    if callback is None:
        return None
    consumed = already
    callback(consumed, total)

    def report(delta: int) -> None:
        nonlocal consumed
        consumed += delta
        callback(consumed, total)

    return report
