"""Where an object key lands under a local folder, for downloading a COS prefix.

A key is a remote, untrusted string; the official SDK's recipe writes ``LocalDir + key`` and so
lets ``a/../../x`` escape the folder. Here a key is split on ``/`` and every component must be a
plain file name, or the key is refused with a reason (``UnsafeKeyError``) and never written:

- absolute keys (leading ``/``) and empty components (``a//b``): the path would not be the key;
- ``.`` and ``..`` components: they would walk the tree;
- backslashes (a path separator on Windows, and a sign of a key made for one), NUL, and control
  characters (C0, DEL, C1: they break terminals and line-based tools);
- names longer than the file system's NAME_MAX, or paths (plus room for the temp, lock and resume
  files beside them) reaching PATH_MAX; and keys that are not valid UTF-8.

Mapping: the part of the listing prefix up to its last ``/`` is removed, the rest is the path
under the folder (``Prefix='data/'``: ``data/x/y`` -> ``LocalDir/x/y``; ``Prefix='data/ima'``:
``data/images/1`` -> ``LocalDir/images/1``), as ``aws s3 cp --recursive`` and rclone do. A key
ending in ``/`` is a folder marker: its folder is created, no file is written.

File-versus-folder conflicts (``a`` and ``a/b``): the key met first keeps its place, the later one
gets ``PathConflictError`` naming the key that holds the place. COS lists keys in byte order and
``a`` sorts before every ``a/...`` key, so in a listing the *file* ``a`` is downloaded and every key
under ``a/`` is refused with "``a`` is a file (key ``a``)". Folders and files already present on
disk are checked when the folder is created or the file renamed into place.

Symbolic links already inside the local folder are followed: the user put them there; the keys
can never create one.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Optional

__all__ = ["KeyPlacementError", "UnsafeKeyError", "PathConflictError", "Placement", "LocalTree",
           "key_components", "strip_prefix"]

# Fallbacks when the file system does not say (Linux values).
_DEFAULT_NAME_MAX = 255
_DEFAULT_PATH_MAX = 4096
# A downloaded file has siblings while it downloads (".<name>.cosfast.resume" is the longest; long
# names get a fixed-length hashed stem instead): keep room for them and the terminating NUL.
_SIBLING_RESERVE = len("..cosfast.resume") + 1


class KeyPlacementError(ValueError):
    """A key cannot be written under the local folder; ``reason`` says why."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"key {key!r} not downloaded: {reason}")
        self.key = key
        self.reason = reason


class UnsafeKeyError(KeyPlacementError):
    """The key is not a plain relative path (it could escape the folder, or cannot be a file name)."""


class PathConflictError(KeyPlacementError):
    """The key's path is taken: a file where a folder is needed, or a folder where the file goes."""


@dataclass(frozen=True)
class Placement:
    """Where one key lands. ``folder`` keys (ending in ``/``) are folder markers: create ``path``."""

    key: str
    path: str
    relative: str
    folder: bool


def strip_prefix(key: str, prefix: str) -> str:
    """The key relative to the folder part of ``prefix`` (everything up to its last ``/``)."""
    folder_part = prefix[: prefix.rfind("/") + 1]
    if not key.startswith(folder_part):
        raise ValueError(f"key {key!r} is not under prefix {prefix!r}")
    return key[len(folder_part):]


# The characters no local name may hold: NUL, the backslash, and the control characters
# (Unicode category Cc, which by Unicode's stability policy is exactly these two ranges). One
# regex search instead of a category lookup per character: every listed key passes here.
_UNSAFE_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")


def _unsafe_character(text: str) -> Optional[str]:
    match = _UNSAFE_CHARACTER.search(text)
    if match is None:
        return None
    ch = match.group()
    if ch == "\x00":
        return "it contains a NUL character"
    if ch == "\\":
        return "it contains a backslash"
    return f"it contains the control character {ch!r}"


def key_components(key: str, relative: str, *, name_max: int = _DEFAULT_NAME_MAX) -> tuple[list[str], bool]:
    """Splits ``relative`` (``key`` with the prefix removed) into file-name components.

    Returns ``(components, is_folder_marker)``; raises UnsafeKeyError if any component is not a
    plain file name. The empty relative path (the prefix's own folder marker) gives ``([], True)``."""
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeKeyError(key, "it is not valid UTF-8") from None
    bad = _unsafe_character(relative)
    if bad:
        raise UnsafeKeyError(key, bad)
    if relative == "":
        return [], True
    if relative.startswith("/"):
        raise UnsafeKeyError(key, "it is an absolute path (starts with '/')" if relative == key
                             else "it has an empty path component ('//')")
    folder = relative.endswith("/")
    components = (relative[:-1] if folder else relative).split("/")
    for name in components:
        if name == "":
            raise UnsafeKeyError(key, "it has an empty path component ('//')")
        if name in (".", ".."):
            raise UnsafeKeyError(key, f"it has a {name!r} path component")
        if len(name.encode("utf-8")) > name_max:
            raise UnsafeKeyError(key, f"the name {name[:40]!r}... is longer than {name_max} bytes (NAME_MAX)")
    return components, folder


def _limit(path: str, name: str, default: int) -> int:
    """os.pathconf of the nearest existing folder at or above ``path``."""
    while True:
        try:
            return os.pathconf(path, name)
        except FileNotFoundError:
            parent = os.path.dirname(path)
            if parent == path:
                return default
            path = parent
        except (OSError, ValueError):
            return default


class LocalTree:
    """Maps keys to paths under ``root`` and remembers which paths are files and which folders.

    Not thread-safe: call ``place`` from the one thread that schedules the downloads."""

    def __init__(self, root: str, prefix: str = "") -> None:
        self.root = os.path.abspath(root)
        self._root_slash = os.path.join(self.root, "")
        self.prefix = prefix
        self.name_max = _limit(self.root, "PC_NAME_MAX", _DEFAULT_NAME_MAX)
        self.path_max = _limit(self.root, "PC_PATH_MAX", _DEFAULT_PATH_MAX)
        self._files: dict[str, str] = {}  # relative path -> key that placed a file there
        self._folders: dict[str, str] = {}  # relative path -> first key that needed the folder
        # Absolute folders made (or found) by make_root/make_folder -> True if the folder was new
        # or empty when this tree first met it: it then holds no file from an earlier run.
        self._made: dict[str, bool] = {}

    def place(self, key: str) -> Placement:
        """Where ``key`` goes; raises UnsafeKeyError or PathConflictError instead of a bad path.

        A placed key claims its path: later keys that conflict with it are refused."""
        relative = strip_prefix(key, self.prefix)
        components, folder = key_components(key, relative, name_max=self.name_max)
        path = os.path.join(self.root, *components)
        if len(os.fsencode(path)) + _SIBLING_RESERVE > self.path_max:
            raise UnsafeKeyError(key, f"the local path would be longer than PATH_MAX ({self.path_max} bytes)")
        # Defence in depth: the checks above already make this impossible. (normpath folds any
        # "..", which commonpath would not.)
        normal = os.path.normpath(path)
        if normal != self.root and not normal.startswith(self._root_slash):
            raise UnsafeKeyError(key, "it would land outside the local folder")
        rel = "/".join(components)
        folders = ["/".join(components[:i]) for i in range(1, len(components) + (1 if folder else 0))]
        for ancestor in folders:
            holder = self._files.get(ancestor)
            if holder is not None:
                raise PathConflictError(key, f"{ancestor!r} is a file (key {holder!r}), it cannot also be a folder")
        if not folder:
            holder = self._folders.get(rel)
            if holder is not None:
                raise PathConflictError(key, f"{rel!r} is a folder (it holds key {holder!r}), it cannot also be a file")
            if rel in self._files:
                raise PathConflictError(key, f"{rel!r} was already placed (key {self._files[rel]!r})")
            self._files[rel] = key
        for ancestor in folders:
            self._folders.setdefault(ancestor, key)
        return Placement(key=key, path=path, relative=rel, folder=folder)

    def make_root(self) -> bool:
        """Creates the local folder itself (and its parents) if missing; True if it was new or
        is empty. A file in the way raises FileExistsError or NotADirectoryError."""
        return self._make(self.root)

    def make_folder(self, placement: Placement) -> bool:
        """Creates the folder a placement needs (its own for a folder marker, else its parent).
        True if the folder was new or empty when this tree first met it (made by this tree, or
        by make_root for the root): then no earlier file can be at the placement's path.

        A local file in the way is a PathConflictError for this key."""
        folder = placement.path if placement.folder else os.path.dirname(placement.path)
        try:
            return self._make(folder)
        except (FileExistsError, NotADirectoryError):
            raise PathConflictError(
                placement.key, f"a local file is in the way of folder {os.path.relpath(folder, self.root)!r}"
            ) from None

    def _make(self, folder: str) -> bool:
        """mkdir -p that tells whether ``folder`` itself was new (created by this call or earlier
        by this tree) or empty; a file in the way raises FileExistsError or NotADirectoryError."""
        fresh = self._made.get(folder)
        if fresh is not None:
            return fresh  # thousands of keys share a few folders: no syscall for the ones already met
        try:
            os.mkdir(folder)
            fresh = True
        except FileNotFoundError:
            parent = os.path.dirname(folder)
            if parent == folder:
                raise
            self._make(parent)
            try:
                os.mkdir(folder)
                fresh = True
            except FileExistsError:  # made meanwhile by another process
                fresh = False
        except FileExistsError:
            fresh = False
        if not fresh:
            if not os.path.isdir(folder):
                raise FileExistsError(f"{folder!r} is not a folder")
            fresh = _is_empty(folder)  # say, a folder made for the download beforehand
        self._made[folder] = fresh
        return fresh


def _is_empty(folder: str) -> bool:
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is None
    except OSError:
        return False  # cannot list it: look for each file instead
