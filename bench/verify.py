"""After each run: every expected file present with the right size and CRC-64, nothing else.

Stray files (a contender's temp or resume files left behind) fail the run too.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.corpus import Corpus
from cosfast.crc64 import crc64_file


@dataclass(frozen=True)
class Verdict:
    ok: bool
    files: int
    bytes: int
    problem: str = ""


def expected_names(corpus: Corpus, suite: str) -> list[dict[str, str]]:
    """The layouts a destination may have: ``{relative path: key}``.

    The big suite downloads to one file named after the key's last part. The small suite
    accepts keys in full under the destination (the SDK recipe, curl, aria2c) or relative to
    the prefix (``aws s3 cp --recursive`` style), whichever the contender chose.
    """
    if suite == "big":
        return [{o.key.rsplit("/", 1)[-1]: o.key for o in corpus.objects}]
    full = {o.key: o.key for o in corpus.objects}
    relative = {o.key[len(corpus.prefix):]: o.key for o in corpus.objects}
    return [full, relative]


def verify_destination(dest: Path, corpus: Corpus, suite: str) -> Verdict:
    found = {str(p.relative_to(dest)) for p in _files_under(dest)}
    by_key = {o.key: o for o in corpus.objects}
    layouts = expected_names(corpus, suite)
    layout = next((names for names in layouts if names.keys() & found), layouts[0])
    missing = sorted(set(layout) - found)
    extra = sorted(found - set(layout))
    if missing or extra:
        return Verdict(False, 0, 0, _describe("missing", missing) + _describe("unexpected", extra))
    checked = 0
    for name, key in layout.items():
        obj = by_key[key]
        path = dest / name
        size = path.stat().st_size
        if size != obj.size:
            return Verdict(False, checked, 0, f"{name}: {size} bytes, expected {obj.size}")
        if crc64_file(path) != obj.crc64:
            return Verdict(False, checked, 0, f"{name}: CRC-64 differs from the object's")
        checked += 1
    return Verdict(True, checked, corpus.total_bytes)


def _files_under(root: Path) -> list[Path]:
    out = []
    for folder, _dirs, names in os.walk(root):
        out.extend(Path(folder) / name for name in names)
    return out


def _describe(what: str, names: list[str]) -> str:
    if not names:
        return ""
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{what}: {shown}; "
