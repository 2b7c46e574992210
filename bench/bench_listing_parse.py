"""Parsing one 1000-key list_objects page: cosfast vs the official SDK (quick, ~2 s).

    python3 bench/bench_listing_parse.py

Both parse the same bytes into the same dict (tests/test_listing_xml.py checks that);
the SDK prints its dict and evals it back, cosfast builds it directly from xml.etree."""
from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from qcloud_cos import cos_comm  # noqa: E402

from cosfast.xmldict import parse_listing  # noqa: E402
from tests.listing_docs import SAMPLES  # noqa: E402


def sdk_parse(doc: bytes) -> dict:
    data = cos_comm.xml_to_dict(doc)
    cos_comm.format_dict(data, ["Contents", "CommonPrefixes"])
    cos_comm.decode_result(data, ["Prefix", "Marker", "NextMarker"],
                           [["Contents", "Key"], ["CommonPrefixes", "Prefix"]])
    return data


def best_of(fn, doc: bytes, rounds: int = 15) -> tuple:
    wall = []
    cpu = []
    for _ in range(rounds):
        w0, c0 = time.perf_counter(), time.process_time()
        fn(doc)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    wall.sort()
    return wall[0], wall[len(wall) // 2], min(cpu)


def main() -> None:
    doc = SAMPLES["page_1000"].encode("utf-8")
    assert parse_listing(doc, decode=True) == sdk_parse(doc)
    results = {
        "cosfast": best_of(lambda d: parse_listing(d, decode=True), doc),
        "qcloud_cos": best_of(sdk_parse, doc),
    }
    print(f"1000-key page, {len(doc)} bytes")
    print(f"{'parser':<12}{'best ms':>10}{'median ms':>12}{'cpu ms':>10}")
    for name, (best, median, cpu) in results.items():
        print(f"{name:<12}{best * 1e3:>10.2f}{median * 1e3:>12.2f}{cpu * 1e3:>10.2f}")
    ratio = results["qcloud_cos"][1] / results["cosfast"][1]
    print(f"median speedup: {ratio:.1f}x")
    print(json.dumps({k: {"best_s": v[0], "median_s": v[1], "cpu_s": v[2]}
                      for k, v in results.items()}))


if __name__ == "__main__":
    main()
