"""``CosS3Client.download_file``: the SDK's signature and meaning, on the transfer engine.

This module only translates: SDK arguments -> checked options, HEAD -> the pinned object
identity, transfer errors -> the SDK's exceptions. The work is in cosfast/transfer/.

Decisions where the SDK is silent or faulty (documented in README):
- every part (and the single GET of a small object) carries ``If-Match: <ETag from HEAD>``, so a
  changed object stops the download instead of mixing versions;
- the CRC-64 is always checked when the server sends ``x-cos-hash-crc64ecma`` (it costs nothing:
  it is computed while writing). With ``EnableCRC=True`` and no such header (objects uploaded
  before COS computed CRC-64) the file is published with an ``UnverifiedDownloadWarning``;
- nothing is fsynced unless ``Fsync=True`` (a cosfast keyword): resume records are saved every
  second without syncing, because a resumed download re-reads every recorded part and checks its
  CRC-64 (a record ahead of the disk after a power loss costs a refetch, never a wrong file);
  with ``Fsync=True`` the file is fsynced before the rename and each record save is durable;
- ``DirectIO`` (a cosfast keyword) decides how the 1 MiB stages of a multi-part download reach
  the disk. None (default): with O_DIRECT while the disk keeps up with the download, else through
  the page cache (cosfast.partwriter's PartSink, direct="auto": a process whose recent stages
  mostly found the disk still busy writes buffered for the next 512 MiB, then tries again). A disk
  that takes stages as fast as they come saves the page cache's copy and its writeback (on this
  VM, 1 GiB from nginx: 1.18x as fast at 0.66 instead of 0.83 CPU s; bench/README.md); the
  stages written direct are not in the page cache afterwards. True writes direct as far as the
  disk takes them whatever the share, False never; ``KeepPageCache=True`` alone also means
  False;
- on a VM whose kernel hands freed memory back to the host (free page reporting), while the
  download's writes show the page cache to be slow, the file's pages are written back as it goes
  and dropped once clean, so later writes reuse them instead of fresh pages the host must back
  again (cosfast.partwriter's TempFile, recycle="when-slow"; the rule is in
  cosfast.transfer.pagecache). An object of at most PartSize is written in 32 KiB pieces, which
  take cheap pages anyway (cosfast.transfer.single.WRITE_PIECE).
  On this VM that made 1 GiB downloads 1.2-1.8x as fast at ~0.5x the CPU, and a download larger
  than memory does not push everything else out of the cache. ``KeepPageCache`` (a cosfast
  keyword): None (default) decides so, True always keeps the pages (for a file read again at
  once), False always recycles them;
- when a multi-part download fails on the network after its retries, the temp file and resume
  record stay so that calling ``download_file`` again fetches only the missing parts (the SDK's
  documented retry loop); every other failure removes them. A resumed download whose object
  CRC-64 does not match is fetched once more from its start in the same call (a kept part may
  hold bytes damaged in transit that its recorded CRC cannot reveal);
- ``progress_callback(consumed_bytes, total_bytes)`` is called as bytes land (at most every 0.1 s
  per engine lane), monotonic, ending at total; from the thread that called ``download_file`` or
  one of the engine's lane threads, one call at a time (never concurrently).
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable, Optional

from cosfast._comm import check_key, path_simplify_check
from cosfast.cos_exception import CosClientError, CosServiceError
from cosfast.errors import service_error
from cosfast.kwargs import check_download_headers, split_object_kwargs
from cosfast.request import ObjectGetTemplate
from cosfast.transfer.destination import DownloadError
from cosfast.transfer.download import DownloadOptions, download_object
from cosfast.transfer.engine import EngineOptions, TransferEngine
from cosfast.transfer.errors import ServerRefusedError, TransferError
from cosfast.transfer.record import ObjectIdentity
from cosfast.transfer.response import parse_decimal
from cosfast.transport import configure_curl

# Conditions the caller puts on the download are checked once, by the HEAD; the parts are then
# pinned with If-Match on the ETag that HEAD saw.
_CONDITION_HEADERS = ("If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since")
_SSE_C_HEADERS = ("x-cos-server-side-encryption-customer-algorithm",
                  "x-cos-server-side-encryption-customer-key",
                  "x-cos-server-side-encryption-customer-key-MD5")
# A part is resumed from where it stopped, so more attempts than the SDK's 3 retries cost little.
MIN_PART_ATTEMPTS = 8
# libcurl hands the body over in chunks of up to this size: one Python call per chunk.
ENGINE_BUFFER_SIZE = 1024 * 1024
# Parts are fetched by at most this many connections, whatever MAXThread says.
MAX_CONNECTIONS = 256


def check_positive_int(name: str, value: Any, upper: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CosClientError(f"{name} must be a positive integer, got {value!r}")
    if upper is not None and value > upper:
        raise CosClientError(f"{name} must be at most {upper}, got {value}")
    return value


def optional_flag(name: str, value: Any) -> Optional[bool]:
    """A keyword that is True, False or None (decided by cosfast)."""
    if value is not None and not isinstance(value, bool):
        raise CosClientError(f"{name} must be True, False or None, got {value!r}")
    return value


def engine_options(client: Any, max_connections: int) -> EngineOptions:
    """Transfer options from the client's config (TLS, proxy, timeouts) and retry policy (its
    backoff schedule, with at least MIN_PART_ATTEMPTS attempts per part)."""
    policy = client._retry_policy
    attempts = max(MIN_PART_ATTEMPTS, client._retry + 1, policy.max_attempts)
    return EngineOptions(
        max_connections=max_connections,
        buffer_size=ENGINE_BUFFER_SIZE,
        retry=dataclasses.replace(policy, max_attempts=attempts),
        configure_curl=functools.partial(_configure, config=client._conf),
    )


def _configure(curl: Any, *, config: Any) -> None:
    configure_curl(curl, config, buffer_size=ENGINE_BUFFER_SIZE)


def head_identity(client: Any, Bucket: str, key: str, headers: dict, params: dict) -> ObjectIdentity:
    """HEADs the object (with the caller's conditions, SSE-C and versionId) and pins what it saw."""
    head_headers = {name: value for name, value in headers.items()
                    if name in _CONDITION_HEADERS or name in _SSE_C_HEADERS}
    head_kwargs_params = {"versionId": params["versionId"]} if "versionId" in params else {}
    exchange = client._open("HEAD", Bucket, key, head_headers, head_kwargs_params)
    exchange.drain()
    if exchange.status == 304:
        # The caller's If-None-Match / If-Modified-Since held: nothing to download. The SDK would
        # write an empty or mixed file here; raising says clearly that no download happened.
        raise CosServiceError("HEAD", {"code": "NotModified", "message": f"{key!r} is not modified: "
                                       "the download's conditions were not met, nothing was written",
                                       "requestid": exchange.header("x-cos-request-id")}, 304)
    if 300 <= exchange.status < 400:
        # A redirect the facade did not follow (AllowRedirects off, or not to another host):
        # its headers describe no object, so nothing may be pinned from them.
        raise CosClientError(f"HEAD of {key!r} answered {exchange.status} with Location "
                             f"{exchange.header('Location')!r}; the redirect was not followed and "
                             "nothing was downloaded")
    return identity_from_head(Bucket, key, params.get("versionId"), exchange.headers)


def identity_from_head(bucket: str, key: str, version_id: Optional[str], headers: dict) -> ObjectIdentity:
    """The object identity a download pins, from its HEAD's headers (any spelling of the names);
    CosClientError if they cannot pin one version (no ETag, no usable Content-Length)."""
    lower = {name.lower(): value for name, value in headers.items()}
    length = lower.get("content-length")
    size = parse_decimal(length)
    if size is None:
        raise CosClientError(f"HEAD of {key!r} gave no usable Content-Length ({length!r})")
    etag = lower.get("etag")
    if not etag:
        raise CosClientError(f"HEAD of {key!r} gave no ETag: the download could not be pinned to one "
                             "version of the object")
    return ObjectIdentity(
        bucket=bucket, key=key,
        version_id=version_id or lower.get("x-cos-version-id"),
        etag=etag, size=size, last_modified=lower.get("last-modified"),
        crc64=lower.get("x-cos-hash-crc64ecma"),
    )


def get_template(client: Any, Bucket: str, headers: dict, params: dict) -> ObjectGetTemplate:
    """The GETs of a download: the caller's headers less its conditions (each part carries
    If-Match on the pinned ETag instead)."""
    fixed = {name: value for name, value in headers.items() if name not in _CONDITION_HEADERS}
    return ObjectGetTemplate(client._conf, Bucket, fixed, params)


def request_builder(template: ObjectGetTemplate, identity: ObjectIdentity) -> Callable[[dict], tuple]:
    """Signs each part's GET of ``identity``: If-Match on its ETag, and its version when known."""
    pinned = {"If-Match": identity.etag}
    if identity.version_id and "versionId" not in template.params:
        template = template.with_params({**template.params, "versionId": identity.version_id})
    key = identity.key

    def build(extra: dict) -> tuple:
        return template.render(key, {**pinned, **extra})

    return build


def as_sdk_error(exc: BaseException, key: str, dest: str, url: str) -> Exception:
    """The SDK's exception for a failure inside the transfer layer."""
    if isinstance(exc, ServerRefusedError):
        return service_error("GET", url, exc.status or 0, exc.headers, exc.body)
    if isinstance(exc, TransferError) and exc.retryable:
        return CosClientError(f"download of {key!r} to {dest!r} failed after retries: {exc}; call "
                              "download_file again to resume (finished parts are kept)")
    if isinstance(exc, (TransferError, DownloadError)):
        return CosClientError(str(exc))
    if isinstance(exc, OSError):
        where = exc.filename or dest
        return CosClientError(f"cannot write {where!r}: [Errno {exc.errno}] {exc.strerror}")
    return CosClientError(f"download of {key!r} failed: {exc}")


def download_file(client: Any, Bucket: str, Key: str, DestFilePath: Any, PartSize: int = 20,
                  MAXThread: int = 5, EnableCRC: bool = False, progress_callback: Optional[Callable] = None,
                  DumpRecordDir: Optional[str] = None, KeySimplifyCheck: bool = True,
                  DisableTempDestFilePath: bool = False, MaxPartCount: int = 10000, *,
                  Fsync: bool = False, DirectIO: Optional[bool] = None, KeepPageCache: Optional[bool] = None,
                  engine: Optional[TransferEngine] = None,
                  **Kwargs: Any) -> None:
    check_positive_int("PartSize", PartSize)
    check_positive_int("MAXThread", MAXThread, MAX_CONNECTIONS)
    check_positive_int("MaxPartCount", MaxPartCount)
    keep_page_cache = optional_flag("KeepPageCache", KeepPageCache)
    direct_io = optional_flag("DirectIO", DirectIO)
    if progress_callback is not None and not callable(progress_callback):
        raise CosClientError("progress_callback must be callable(consumed_bytes, total_bytes)")
    if not isinstance(DestFilePath, (str, os.PathLike)) or not os.fspath(DestFilePath):
        raise CosClientError(f"DestFilePath must be a non-empty path, got {DestFilePath!r}")
    dest = os.fspath(DestFilePath)
    headers, params = split_object_kwargs(Kwargs)
    if any(name.lower() == "range" for name in headers):
        raise CosClientError("download_file downloads whole objects; for a byte range use get_object(Range=...)")
    check_download_headers(headers)
    key = check_key(Key)
    if KeySimplifyCheck:
        path_simplify_check(key)

    identity = head_identity(client, Bucket, key, headers, params)
    options = DownloadOptions(
        part_size_mib=PartSize, max_connections=MAXThread, max_part_count=MaxPartCount,
        enable_crc=bool(EnableCRC), record_dir=DumpRecordDir,
        use_temp_file=not DisableTempDestFilePath, progress_callback=progress_callback,
        fsync=bool(Fsync), direct_io=direct_io, keep_page_cache=keep_page_cache,
        engine=engine_options(client, MAXThread),
    )
    try:
        download_object(identity, dest, build_request=request_builder(get_template(client, Bucket, headers, params), identity),
                        options=options, engine=engine)
    except (TransferError, DownloadError, OSError) as exc:
        raise as_sdk_error(exc, key, dest, client.get_object_url(Bucket, key)) from exc
