"""The in-process emulator: an aiohttp server on its own thread and event loop, plus the Python
API tests use to seed objects, inject faults and read the request log."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import ssl
import tempfile
import threading
import time
from pathlib import Path
from typing import Union

from aiohttp import web

from cosfast.emulator.auth import Credentials, KeyRing
from cosfast.emulator.faults import Fault, FaultSet
from cosfast.emulator.handlers import CosHandler, Parts, ServerOptions
from cosfast.emulator.objects import replace_object
from cosfast.emulator.requestlog import RequestLog, RequestRecord, peak_concurrency
from cosfast.emulator.storage import BUCKET_NAME, ObjectInfo, PutOptions, Storage, copy_file_chunks

DEFAULT_SECRET_ID = "AKIDcosfastEmulatorTestKey00000000"
DEFAULT_SECRET_KEY = "cosfastEmulatorTestSecret0000000"

PathLike = Union[str, os.PathLike]
_START_TIMEOUT = 30.0
# close() waits this long for requests in flight, then cancels them (a stall fault may hold one
# for as long as it was told to).
_SHUTDOWN_GRACE = 1.0


class Emulator:
    """A local COS server. Use as a context manager (or call start() and close()).

    ``root`` holds the buckets (kept across runs); None uses a temporary folder removed on close.
    ``auth=False`` accepts any request, signed or not (for S3 clients and benchmarks).
    ``tls=(certfile, keyfile)`` serves https. ``admin=True`` adds the admin endpoint
    (see cosfast.emulator.admin). ``default_bucket`` serves clients configured with ``Domain=``.
    """

    def __init__(
        self,
        root: PathLike | None = None,
        *,
        secret_id: str = DEFAULT_SECRET_ID,
        secret_key: str = DEFAULT_SECRET_KEY,
        auth: bool = True,
        region: str = "ap-guangzhou",
        tls: tuple[PathLike, PathLike] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        admin: bool = False,
        default_bucket: str | None = None,
    ) -> None:
        self._own_root = root is None
        self.root = (
            Path(tempfile.mkdtemp(prefix="cosfast-emulator-")) if root is None else Path(root)
        )
        self.secret_id = secret_id
        self._secret_key = secret_key
        self.region = region
        self.host = host
        self.port = port
        self.scheme = "https" if tls else "http"
        self._tls = tls
        self._parts = Parts(Storage(self.root), KeyRing(), FaultSet(), RequestLog())
        self._parts.keyring.add(Credentials(secret_id, secret_key))
        self._options = ServerOptions(
            region=region, auth=auth, admin=admin, default_bucket=default_bucket
        )
        if default_bucket is not None:
            self.create_bucket(default_bucket)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._thread is not None:
            raise RuntimeError("this emulator is already running")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._serve,
            args=(ready, failure),
            name=f"cosfast-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        if not ready.wait(_START_TIMEOUT):
            raise RuntimeError("the emulator did not start in time")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def _serve(self, ready: threading.Event, failure: list) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start_site())
        except BaseException as exc:  # reported to start(), which re-raises it in the caller
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())
            # Handlers still stalled or pacing a body after the grace period: end them here, so
            # none is left pending (and reported as destroyed) when the loop goes away.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _start_site(self) -> None:
        app = CosHandler(self._parts, self._options).application()
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_GRACE
        )
        await self._runner.setup()
        ssl_context = None
        if self._tls is not None:
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(os.fspath(self._tls[0]), os.fspath(self._tls[1]))
        site = web.TCPSite(
            self._runner, self.host, self.port, ssl_context=ssl_context, backlog=1024
        )
        await site.start()
        self.port = self._runner.addresses[0][1]

    def close(self) -> None:
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._thread = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        root = str(self.root)
        return f"Emulator(endpoint={self.endpoint!r}, secret_id={self.secret_id!r}, root={root!r})"

    # -- where and who -------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def secret_key(self) -> str:
        return self._secret_key

    def sdk_config(self, **overrides: object) -> dict:
        """Keyword arguments for ``CosConfig`` (the official SDK's or cosfast's) to reach this
        server with its permanent key: ``CosConfig(**emu.sdk_config())``."""
        config = {
            "Region": self.region,
            "SecretId": self.secret_id,
            "SecretKey": self._secret_key,
            "IP": self.host,
            "Port": self.port,
            "Scheme": self.scheme,
        }
        config.update(overrides)
        return config

    def create_temporary_credentials(self, *, expires_in: float = 3600) -> Credentials:
        """A new temporary key pair with a token (sent as x-cos-security-token), valid for
        ``expires_in`` seconds from now."""
        creds = Credentials(
            secret_id="AKIDtmp" + secrets.token_hex(12),
            secret_key=secrets.token_hex(16),
            token=secrets.token_urlsafe(32),
            expires_at=time.time() + expires_in,
        )
        self._parts.keyring.add(creds)
        return creds

    # -- seeding -------------------------------------------------------------------------------

    def create_bucket(
        self, name: str, *, public_read: bool = False, versioning: bool = False
    ) -> str:
        """Creates (or reconfigures) a bucket ``<name>-<appid>``; returns its name."""
        if not BUCKET_NAME.match(name):
            raise ValueError(
                f"bucket name {name!r} is not <name>-<appid> (lower-case letters, digits and '-', "
                "then '-' and the numeric appid), e.g. 'examplebucket-1250000000'"
            )
        self._parts.storage.create_bucket(name, public_read=public_read, versioning=versioning)
        return name

    def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes | None = None,
        *,
        path: PathLike | None = None,
        content_type: str | None = None,
        metadata: dict | None = None,
        headers: dict | None = None,
        with_crc: bool = True,
    ) -> ObjectInfo:
        """Stores an object from ``data`` or from the file at ``path`` (streamed, never held in
        memory). ``with_crc=False`` stores it without x-cos-hash-crc64ecma, as COS's old objects."""
        if (data is None) == (path is None):
            raise TypeError("put_object needs exactly one of data= or path=")
        if data is not None and not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        chunks = [bytes(data)] if data is not None else copy_file_chunks(path)
        options = PutOptions(
            content_type=content_type, headers=headers, metadata=metadata, with_crc=with_crc
        )
        return self._parts.storage.put_stream(bucket, key, chunks, options)

    def replace_object(self, bucket: str, key: str, data: bytes | None = None) -> ObjectInfo:
        """Replaces an existing object's bytes (``data``, or the current ones inverted), keeping
        its headers; the ETag changes."""
        return replace_object(self._parts.storage, bucket, key, data)

    def delete_object(self, bucket: str, key: str) -> None:
        self._parts.storage.delete(bucket, key)

    def head_object(self, bucket: str, key: str, version_id: str | None = None) -> ObjectInfo:
        """The stored object's description (raises CosError NoSuchKey/NoSuchBucket)."""
        return self._parts.storage.lookup(bucket, key, version_id)

    # -- faults and the log --------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> int:
        return self._parts.faults.add(fault)

    def remove_fault(self, fault_id: int) -> None:
        self._parts.faults.remove(fault_id)

    def fault_fired(self, fault_id: int) -> int:
        """How many requests the fault has fired on."""
        return self._parts.faults.fired(fault_id)

    def clear_faults(self) -> None:
        self._parts.faults.clear()

    @property
    def request_log(self) -> list[RequestRecord]:
        """A copy of the log, oldest first, once requests in flight have ended (waiting at most
        a second: a stalled request may still show ``ended=None``)."""
        return self._parts.log.records()

    def clear_log(self) -> None:
        self._parts.log.clear()

    def peak_concurrency(self) -> int:
        """The most logged requests that were in flight at the same time."""
        return peak_concurrency(self.request_log)

    def connection_ids(self) -> set[int]:
        """The TCP connections the logged requests came on."""
        return {record.conn_id for record in self.request_log}
