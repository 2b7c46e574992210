"""The ``cosfast`` command.

    cosfast get cos://bucket/key [DEST]          one object (DEST: a file or a folder; default: ./<name>)
    cosfast get -r cos://bucket/prefix/ DIR      every object under a prefix
    cosfast ls [-r] cos://bucket/prefix          list objects (and folders, unless -r)
    cosfast demo [--size 256MiB] [--files 500]   local emulator, cosfast vs the official SDK
    cosfast emulator ...                         run the local COS emulator (its own --help)
    cosfast bench ...                            the benchmarks against the official SDK and others

Credentials come from COS_SECRET_ID, COS_SECRET_KEY, COS_TOKEN and COS_REGION, or the matching
flags; no keys means anonymous requests. ``--endpoint-url URL`` (or COS_ENDPOINT_URL) sends every
request to that host, e.g. the emulator. Exit codes: see cosfast/cli/errors.py (0 ok, 1 failed,
2 usage, 3 auth, 4 not found, 5 local file error, 130 interrupted).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from typing import Callable, NoReturn, Optional, Sequence

from cosfast import __version__
from cosfast.cli.errors import ExitCode, UsageError, describe
from cosfast.cli.output import Output
from cosfast.cli.target import Connection, parse_cos_url

__all__ = ["main", "ExitCode"]

# Commands that hand the rest of the command line to another program's main(argv).
_DELEGATES = {
    "emulator": ("cosfast.emulator.__main__", "the emulator needs aiohttp: pip install 'cosfast[emulator]'"),
    "bench": ("bench.cli", "the bench package is installed with cosfast; reinstall cosfast"),
}


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting, so main() owns the exit code."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection (flags override the environment)")
    group.add_argument("--region", help="COS region, e.g. ap-guangzhou (env COS_REGION)")
    group.add_argument("--secret-id", help="SecretId (env COS_SECRET_ID)")
    group.add_argument("--secret-key", help="SecretKey (env COS_SECRET_KEY; safer than a flag, "
                                            "which other users can see in the process list)")
    group.add_argument("--token", help="session token of temporary keys (env COS_TOKEN)")
    group.add_argument("--endpoint-url", metavar="URL",
                       help="send every request to this http(s)://host[:port] (env COS_ENDPOINT_URL)")
    out = common.add_argument_group("output")
    out.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    out.add_argument("--json", action="store_true", help="JSON lines on stdout, for scripts")
    out.add_argument("--debug", action="store_true", help="show tracebacks and cosfast's debug log")
    return common


def _transfer_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("transfer")
    group.add_argument("--part-size", type=_positive_int, default=20, metavar="MiB",
                       help="objects larger than this are fetched in parts of this size (default 20)")
    group.add_argument("-j", "--threads", type=_positive_int, default=None, metavar="N",
                       help="concurrent transfers (default 5 for one object, 16 for -r)")
    group.add_argument("--crc", action="store_true",
                       help="require a CRC-64 check (an object without x-cos-hash-crc64ecma warns); "
                            "objects with the header are always checked")
    group.add_argument("--traffic-limit", type=_positive_int, metavar="BIT/S",
                       help="per-connection bandwidth cap, 819200..838860800 bit/s")
    direct = group.add_mutually_exclusive_group()
    direct.add_argument("--direct-io", dest="direct_io", action="store_const", const=True,
                        help="write the parts of objects above --part-size with O_DIRECT as far as the disk "
                             "takes them (those bytes are not left in the page cache); by default only while "
                             "the disk keeps up with the download")
    direct.add_argument("--no-direct-io", dest="direct_io", action="store_const", const=False,
                        help="write every byte through the page cache")
    cache = group.add_mutually_exclusive_group()
    cache.add_argument("--keep-page-cache", dest="keep_page_cache", action="store_const", const=True,
                       help="leave the downloaded files in the page cache")
    cache.add_argument("--drop-page-cache", dest="keep_page_cache", action="store_const", const=False,
                       help="write the files' pages back and drop them from the page cache as the download "
                            "goes (by default only on a VM whose kernel hands freed memory to the host, "
                            "while the page cache is slow)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = _Parser(prog="cosfast", description="Fast, verified downloads from Tencent Cloud COS.",
                     epilog="Exit codes: 0 ok, 1 failed, 2 usage, 3 auth/permission, 4 not found, "
                            "5 local file error, 130 interrupted.")
    parser.add_argument("--version", action="version", version=f"cosfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    get = sub.add_parser("get", parents=[common], help="download an object, or a prefix with -r",
                         description="Download cos://bucket/key to DEST, or every object under "
                                     "cos://bucket/prefix/ into the folder DEST with -r.")
    get.add_argument("source", metavar="cos://bucket/key")
    get.add_argument("dest", nargs="?", metavar="DEST")
    get.add_argument("-r", "--recursive", action="store_true", help="download every object under the prefix")
    _transfer_options(get)
    batch = get.add_argument_group("with -r")
    batch.add_argument("--include", action="append", default=[], metavar="GLOB",
                       help="only keys (relative to the prefix) matching this glob; repeatable")
    batch.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                       help="skip keys matching this glob; repeatable, wins over --include")
    batch.add_argument("--force", action="store_true",
                       help="download even objects whose local copy has the same size and mtime")
    batch.add_argument("--processes", type=_positive_int, default=None, metavar="N",
                       help="worker processes (default: one per core, at most 4, for 64 objects or "
                            "more; 1: download in this process)")

    ls = sub.add_parser("ls", parents=[common], help="list objects under a prefix",
                        description="List cos://bucket/prefix: objects and, unless -r, sub-folders.")
    ls.add_argument("target", metavar="cos://bucket/prefix")
    ls.add_argument("-r", "--recursive", action="store_true", help="list every key, not folder by folder")

    demo = sub.add_parser("demo", help="download from a local emulator with cosfast and the official SDK",
                          description="Start a local COS emulator, seed it, download with cosfast (and "
                                      "the official SDK when installed), verify, compare throughput.")
    from cosfast.cli.demo import add_demo_arguments
    add_demo_arguments(demo)

    for name, purpose in (("emulator", "run the local COS emulator"),
                          ("bench", "compare cosfast with the official SDK and other clients")):
        sub.add_parser(name, help=purpose, add_help=False)
    return parser


def _delegate(name: str, argv: Sequence[str]) -> int:
    module_name, missing_hint = _DELEGATES[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"`cosfast {name}` is not available: {exc}; {missing_hint}") from None
    entry: Optional[Callable[[list[str]], Optional[int]]] = getattr(module, "main", None)
    if entry is None:
        raise UsageError(f"`cosfast {name}`: {module_name} has no main(argv)")
    return int(entry(list(argv)) or 0)


def _split_delegated(argv: list[str]) -> tuple[Optional[str], list[str]]:
    """(delegated command, its arguments) if argv names one before any other word."""
    for index, word in enumerate(argv):
        if word in _DELEGATES:
            return word, argv[index + 1:]
        if not word.startswith("-"):
            return None, []
    return None, []


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line ``argv`` (default sys.argv[1:]) and returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    out = Output(stdout=sys.stdout, stderr=sys.stderr, json_mode="--json" in argv, quiet="--quiet" in argv)
    try:
        delegated, rest = _split_delegated(argv)
        if delegated is not None:
            return _delegate(delegated, rest)
        args = build_parser().parse_args(argv)
        out = Output(stdout=sys.stdout, stderr=sys.stderr, json_mode=getattr(args, "json", False),
                     quiet=getattr(args, "quiet", False))
        if debug:
            import logging
            logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
        return int(_run(args, out))
    except SystemExit:
        raise
    except BaseException as exc:  # one line per failure; the traceback only when asked for
        code, message = describe(exc)
        if debug:
            traceback.print_exc(file=sys.stderr)
        out.error(int(code), message)
        return int(code)


def _run(args: argparse.Namespace, out: Output) -> ExitCode:
    if args.command == "demo":
        from cosfast.cli.demo import run_demo
        return run_demo(args, out)
    from cosfast.cli.commands import run_get, run_ls
    url = parse_cos_url(args.source if args.command == "get" else args.target)
    connection = Connection.from_args(args, os.environ)
    out.secrets = connection.secrets()
    if args.command == "get":
        if args.threads is None:
            args.threads = 16 if args.recursive else 5
        return run_get(args, url, connection, out)
    return run_ls(args, url, connection, out)
