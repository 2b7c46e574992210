"""``cosfast bench`` / ``python -m bench``: parse the options, run one suite, print the table.

Exit status: 0 when every run of every contender downloaded and verified, 1 when any failed,
2 for bad options or a server that would not start.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from bench.report import rerender
from bench.runner import SuiteOptions, run_suite
from bench.units import format_size, parse_size

DEFAULTS = {  # suite -> (count, object size)
    "big": (1, parse_size("1GiB")),
    "small": (2000, parse_size("256KiB")),
}
QUICK = {"big": (1, parse_size("24MiB")), "small": (50, parse_size("16KiB"))}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cosfast bench",
        description="Download the same objects with cosfast, the official SDK and other clients, "
                    "interleaved over several rounds, and compare.",
    )
    p.add_argument("--suite", choices=sorted(DEFAULTS), default="big",
                   help="big: one large object; small: many small ones (default: big)")
    p.add_argument("--size", type=parse_size,
                   help=f"object size (big default {format_size(DEFAULTS['big'][1])}, "
                        f"small default {format_size(DEFAULTS['small'][1])})")
    p.add_argument("--count", type=int, help="objects in the small suite (default 2000)")
    p.add_argument("--rounds", type=int, default=None, help="rounds of every contender (default 5)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed runs before round 1, of the first contender (default 1, 0 with --quick): "
                        "the first download after seeding pays for page-cache pages the VM never "
                        "touched, which would penalise whoever goes first")
    p.add_argument("--no-settle", action="store_true",
                   help="start each run at once instead of waiting until the VM has taken back the "
                        "memory the previous run freed and creating a file is cheap again after "
                        "files were removed (bench/settle.py; no wait where neither applies)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke test of the harness: tiny objects, 1 round, a few seconds")
    p.add_argument("--server", choices=("emulator", "nginx", "external"), default=None,
                   help="emulator (default), nginx as a neutral sendfile server, or external "
                        "(implied by --endpoint-url)")
    p.add_argument("--endpoint-url", help="an existing server; seeded with the official SDK, signed "
                                          "with COS_SECRET_ID/COS_SECRET_KEY")
    p.add_argument("--bucket", default="bench-1250000000", help="bucket name (default %(default)s)")
    p.add_argument("--dest", default="disk",
                   help="where files land: disk (under the work folder), tmpfs (/dev/shm) or a folder")
    p.add_argument("--contenders", help="comma-separated names to run (default: every installed one)")
    p.add_argument("--baseline", default="cosfast",
                   help="the contender the paired ratios compare with (default %(default)s)")
    p.add_argument("--concurrency", type=int, default=16,
                   help="threads/ranges/connections for contenders without a default of their own "
                        "(boto3 small, obstore, curl -Z, aria2c; default %(default)s)")
    p.add_argument("--timeout", type=float, help="seconds per run before it is killed (default: from size)")
    p.add_argument("--work-dir", type=Path, help="keep corpus and server state here (default: a temporary "
                                                 "folder under /var/tmp, removed at the end)")
    p.add_argument("--out", type=Path, default=Path("bench-results"),
                   help="folder for the .jsonl, .md and .png results (default %(default)s)")
    p.add_argument("--no-chart", action="store_true", help="skip the PNG (matplotlib's import takes seconds)")
    p.add_argument("--from-jsonl", type=Path, metavar="FILE",
                   help="print the table of an earlier run's .jsonl again (with --baseline), then exit")
    p.add_argument("--list", action="store_true", help="list the suite's contenders and versions, then exit")
    return p


def options_from(args: argparse.Namespace, argv: list[str]) -> SuiteOptions:
    count, size = (QUICK if args.quick else DEFAULTS)[args.suite]
    count = args.count if args.count is not None else count
    if args.suite == "big" and count != 1:
        raise ValueError("the big suite downloads one object; use --suite small for --count")
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    warmup = args.warmup if args.warmup is not None else (0 if args.quick else 1)
    if warmup < 0:
        raise ValueError(f"--warmup must be at least 0, got {warmup}")
    server = args.server or ("external" if args.endpoint_url else "emulator")
    for name, value in (("--count", count), ("--rounds", rounds), ("--concurrency", args.concurrency)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    only = tuple(n.strip() for n in args.contenders.split(",") if n.strip()) if args.contenders else None
    return SuiteOptions(
        suite=args.suite, count=count, object_size=args.size or size, rounds=rounds, warmup=warmup,
        settle=not args.no_settle and not args.quick,
        server=server,
        endpoint_url=args.endpoint_url, dest=args.dest, only=only, baseline=args.baseline,
        concurrency=args.concurrency, timeout=args.timeout, work_dir=args.work_dir, out_dir=args.out,
        bucket=args.bucket, chart=not args.no_chart, command="cosfast bench " + shlex.join(argv),
    )


def list_contenders(suite: str) -> None:
    from bench.contenders import for_suite

    for c in for_suite(suite):
        why = c.missing()
        print(f"{c.name:<14} {c.version() if not why else 'skip: ' + why}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.list:
        list_contenders(args.suite)
        return 0
    try:
        if args.from_jsonl:
            print(rerender(args.from_jsonl, args.baseline))
            return 0
        options = options_from(args, argv)
        result = run_suite(options, say=lambda line: print(line, flush=True))
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"cosfast bench: {exc}", file=sys.stderr)
        return 2
    print()
    print(result.markdown)
    for kind, path in result.files.items():
        print(f"{kind}: {path}")
    return 0 if result.all_ok else 1
