"""``cosfast get``, ``cosfast get -r`` and ``cosfast ls``: argument meaning to client calls."""
from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable, Iterator, Optional

from cosfast.cli.errors import CommandError, ExitCode, UsageError
from cosfast.cli.output import Output
from cosfast.cli.progress import NullProgress, human_bytes, make_progress
from cosfast.cli.target import Connection, CosUrl


def make_client(connection: Connection) -> Any:
    from cosfast.client import CosS3Client
    from cosfast.config import CosConfig

    return CosS3Client(CosConfig(**connection.config_kwargs()))


def destination_for(key: str, dest: Optional[str]) -> str:
    """Where ``get`` writes: DEST as given, or the key's last name inside DEST when DEST is a
    folder (or ends with '/'), or in the current folder when DEST is omitted."""
    name = key.rsplit("/", 1)[-1]
    if dest is None:
        return name
    if dest.endswith(os.sep) or os.path.isdir(dest):
        return os.path.join(dest, name)
    return dest


def _sdk_progress(progress: NullProgress) -> Callable[[int, int], None]:
    """The SDK's progress_callback(consumed, total) feeding a progress bar."""
    reported = 0

    def on_progress(consumed: int, total: int) -> None:
        nonlocal reported
        progress.set_total(total_bytes=total)
        progress.add_bytes(consumed - reported)
        reported = consumed

    return on_progress


def _rate(nbytes: int, seconds: float) -> str:
    return f"{human_bytes(nbytes / seconds)}/s" if seconds > 0 else "-"


def run_get(args: argparse.Namespace, url: CosUrl, connection: Connection, out: Output) -> ExitCode:
    if args.recursive:
        return _get_recursive(args, url, connection, out)
    if not url.key or url.key.endswith("/"):
        raise UsageError(f"{url} names a folder, not an object: use `cosfast get -r {url} DIR`")
    dest = destination_for(url.key, args.dest)
    progress = make_progress(out.stderr, enabled=out.shows_progress, label=os.path.basename(dest))
    on_progress = _sdk_progress(progress)
    folder = os.path.dirname(dest)
    if folder:
        os.makedirs(folder, exist_ok=True)
    client = make_client(connection)
    start = time.monotonic()
    try:
        client.download_file(url.bucket, url.key, dest, PartSize=args.part_size, MAXThread=args.threads,
                             EnableCRC=args.crc, DirectIO=args.direct_io, KeepPageCache=args.keep_page_cache,
                             progress_callback=on_progress, **_traffic(args))
    finally:
        progress.close()
    seconds = time.monotonic() - start
    size = os.path.getsize(dest)
    out.record({"type": "result", "source": str(url), "dest": os.path.abspath(dest), "bytes": size,
                "seconds": round(seconds, 6)},
               f"{url} -> {dest}  ({human_bytes(size)} in {seconds:.2f} s, {_rate(size, seconds)})")
    return ExitCode.OK


def _traffic(args: argparse.Namespace) -> dict:
    return {"TrafficLimit": args.traffic_limit} if args.traffic_limit else {}


def _get_recursive(args: argparse.Namespace, url: CosUrl, connection: Connection, out: Output) -> ExitCode:
    if args.dest is None:
        raise UsageError("get -r needs a local folder: cosfast get -r cos://bucket/prefix/ DIR")
    progress = make_progress(out.stderr, enabled=out.shows_progress)
    on_progress = _sdk_progress(progress)

    def on_object(result: Any) -> None:
        progress.file_done()
        doc = {"type": "object", "key": result.key, "path": result.path, "status": result.status,
               "bytes": result.size}
        if result.error:
            doc["error"] = result.error
            if not out.json_mode:
                out.warn(f"{result.status}: {result.key!r}: {result.error}")
        if out.json_mode:
            out.record(doc, "")

    client = make_client(connection)
    try:
        summary = client.download_dir(
            url.bucket, url.key, args.dest, Include=tuple(args.include), Exclude=tuple(args.exclude),
            SkipUnchanged=not args.force, PartSize=args.part_size, MAXThread=args.threads,
            EnableCRC=args.crc, Processes=args.processes, DirectIO=args.direct_io,
            KeepPageCache=args.keep_page_cache, progress_callback=on_progress, object_callback=on_object,
            **_traffic(args))
    finally:
        progress.close()
    out.record(dict(type="summary", **summary.to_dict()),
               f"{summary.downloaded} downloaded ({human_bytes(summary.bytes)} in {summary.seconds:.2f} s, "
               f"{_rate(summary.bytes, summary.seconds)}), {summary.skipped} unchanged, "
               f"{len(summary.failed)} failed")
    if summary.failed:
        return ExitCode.FAILED
    if summary.downloaded + summary.skipped + summary.folders == 0:
        raise CommandError(f"nothing found under {url}", ExitCode.NOT_FOUND)
    return ExitCode.OK


def _list_pages(client: Any, url: CosUrl, delimiter: str) -> Iterator[dict]:
    marker = ""
    while True:
        page = client.list_objects(url.bucket, Prefix=url.key, Delimiter=delimiter, Marker=marker, MaxKeys=1000)
        yield page
        if page.get("IsTruncated") != "true":
            return
        contents = page.get("Contents") or []
        prefixes = page.get("CommonPrefixes") or []
        marker = page.get("NextMarker") or max(
            [c["Key"] for c in contents] + [p["Prefix"] for p in prefixes], default="")
        if not marker:
            raise CommandError("the listing is truncated but names no next marker", ExitCode.FAILED)


def run_ls(args: argparse.Namespace, url: CosUrl, connection: Connection, out: Output) -> ExitCode:
    client = make_client(connection)
    delimiter = "" if args.recursive else "/"
    for page in _list_pages(client, url, delimiter):
        for prefix in page.get("CommonPrefixes") or []:
            out.record({"type": "prefix", "prefix": prefix["Prefix"]}, f"{'PRE':>30}  {prefix['Prefix']}")
        for item in page.get("Contents") or []:
            size = int(item.get("Size", 0))
            out.record({"type": "object", "key": item["Key"], "size": size,
                        "last_modified": item.get("LastModified"), "etag": item.get("ETag"),
                        "storage_class": item.get("StorageClass")},
                       f"{item.get('LastModified', ''):>24}  {size:>12}  {item['Key']}")
    return ExitCode.OK
