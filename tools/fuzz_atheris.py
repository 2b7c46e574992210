"""Coverage-guided fuzzing (atheris, libFuzzer) of the parsers the hypothesis suite also fuzzes:
anything other than the documented exceptions is a crash, and libFuzzer saves the input.

    pip install atheris        # the 'fuzz' extra: pip install -e '.[fuzz]'
    python3 tools/fuzz_atheris.py TARGET [libFuzzer options]
    python3 tools/fuzz_atheris.py record -max_total_time=60
    python3 tools/fuzz_atheris.py all 60        # every target for 60 s each, in turn

Targets: error_xml, listing, headers, record, keypath.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports():
    from cosfast.cos_exception import CosClientError, CosServiceError, digest_xml_or_json
    from cosfast.download_file import identity_from_head
    from cosfast.errors import service_error
    from cosfast.transfer.keypath import KeyPlacementError, LocalTree
    from cosfast.transfer.record import CorruptRecordError, ResumeRecord
    from cosfast.transfer.response import HeaderParser, parse_content_range
    from cosfast.xmldict import parse_listing

KEYPATH_ROOT = "/nonexistent-cosfast-fuzz-root"


def error_xml(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    charset = fdp.ConsumeUnicodeNoSurrogates(12)
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    digest_xml_or_json(body)
    error = service_error("GET", "https://b.cos.x/k", 500, {"Content-Type": f"text/xml; charset={charset}"}, body)
    assert isinstance(error, CosServiceError)
    error.get_error_code(), error.get_request_id(), str(error)


def listing(data: bytes) -> None:
    try:
        parse_listing(data, decode=True)
    except CosClientError:
        pass


def headers(data: bytes) -> None:
    parser = HeaderParser()
    for line in data.split(b"\n"):
        parser.feed(line + b"\n")
    parse_content_range(parser.get("Content-Range"))
    try:
        identity_from_head("b-1250000000", "k", None, parser.headers)
    except CosClientError:
        pass


def record(data: bytes) -> None:
    try:
        ResumeRecord.from_bytes(data)
    except CorruptRecordError:
        pass


def keypath(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    prefix = fdp.ConsumeUnicode(8)
    key = fdp.ConsumeUnicode(200)
    try:
        placement = LocalTree(KEYPATH_ROOT, prefix).place(key)
    except (KeyPlacementError, ValueError):  # ValueError: the key is not under the prefix
        return
    assert os.path.commonpath([KEYPATH_ROOT, placement.path]) == KEYPATH_ROOT, placement


TARGETS = {"error_xml": error_xml, "listing": listing, "headers": headers, "record": record, "keypath": keypath}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in (*TARGETS, "all"):
        print(__doc__)
        return 2
    if sys.argv[1] == "all":
        seconds = sys.argv[2] if len(sys.argv) > 2 else "60"
        failed = [name for name in TARGETS
                  if subprocess.call([sys.executable, __file__, name, f"-max_total_time={seconds}",
                                      "-print_final_stats=1"]) != 0]
        print("atheris: all targets ran clean" if not failed else f"atheris: crashes in {failed}")
        return 1 if failed else 0
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
