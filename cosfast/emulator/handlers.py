"""The one aiohttp handler every request goes through: log, address, authenticate, dispatch,
and render COS's error XML for anything that fails."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

from aiohttp import web

from cosfast.emulator.addressing import Target, resolve_target
from cosfast.emulator.admin import ADMIN_PREFIX, AdminHandlers
from cosfast.emulator.auth import TOKEN_NAME, KeyRing, SignedRequest, verify
from cosfast.emulator.buckets import BucketHandlers
from cosfast.emulator.errors import CosError, error_xml, new_request_id, new_trace_id
from cosfast.emulator.faults import FaultSet
from cosfast.emulator.objects import ObjectHandlers
from cosfast.emulator.requestlog import LOGGED_HEADERS, RequestLog, RequestRecord
from cosfast.emulator.storage import Storage

logger = logging.getLogger("cosfast.emulator")


@dataclass(frozen=True)
class ServerOptions:
    region: str = "ap-guangzhou"
    auth: bool = True
    admin: bool = False
    default_bucket: str | None = None


@dataclass(frozen=True)
class Parts:
    """The emulator's shared state; the Python API and the server hold the same objects."""

    storage: Storage
    keyring: KeyRing
    faults: FaultSet
    log: RequestLog


class CosHandler:
    def __init__(self, parts: Parts, options: ServerOptions) -> None:
        self.parts = parts
        self.options = options
        self.objects = ObjectHandlers(parts.storage, parts.faults)
        self.buckets = BucketHandlers(parts.storage, parts.faults, options.region)
        self.admin = AdminHandlers(parts) if options.admin else None

    def application(self) -> web.Application:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path
        query_string = raw_path.split("?", 1)[1] if "?" in raw_path else ""
        query_pairs = parse_qsl(query_string, keep_blank_values=True, errors="surrogateescape")
        query = dict(query_pairs)
        host = request.headers.get("Host")
        if self.admin is not None and raw_path.startswith(ADMIN_PREFIX):
            return await self.admin.handle(request)
        target = resolve_target(
            host, raw_path, self.parts.storage.has_bucket, self.options.default_bucket
        )
        record = self.parts.log.start(
            RequestRecord(
                method=request.method,
                path=target.path,
                bucket=target.bucket,
                key=target.key,
                query={
                    k: v for k, v in query.items() if not k.startswith("q-") and k != TOKEN_NAME
                },
                range=request.headers.get("Range"),
                conn_id=self.parts.log.conn_id(request.transport),
                started=time.time(),
                headers={h: request.headers[h] for h in LOGGED_HEADERS if h in request.headers},
                request_id=new_request_id(),
            )
        )
        try:
            signed = SignedRequest(request.method, target.path, query_pairs, request.headers)
            response = await self._dispatch(request, target, signed, query, record)
        except CosError as error:
            record.error_code = error.code
            response = self._error(request, error, target, host, record)
        except asyncio.CancelledError:  # the server is closing with this request in flight
            record.error_code = "Cancelled"
            self.parts.log.finish(record, record.status or 499)
            raise
        except ConnectionError:
            # The client went away mid-upload (a GET body handles its own).
            response = web.Response(status=499)
            record.error_code = "ClientClosed"
        except Exception:
            logger.exception("emulator bug while serving %s %s", request.method, target.path)
            record.error_code = "InternalError"
            response = self._error(request, CosError("InternalError"), target, host, record)
        if not response.prepared:  # a streamed GET body was stamped before it went out
            response.headers.update(record.stamp())
        if isinstance(response, web.Response) and isinstance(response.body, bytes):
            record.bytes_sent = len(response.body)
        self.parts.log.finish(record, response.status)
        return response

    async def _dispatch(
        self,
        request: web.Request,
        target: Target,
        signed: SignedRequest,
        query: dict,
        record: RequestRecord,
    ) -> web.StreamResponse:
        method = request.method
        signer = verify(signed, self.parts.keyring) if self.options.auth else None
        record.secret_id = signer.secret_id if signer else None
        if target.bucket is None:
            if method != "GET":
                raise CosError("MethodNotAllowed")
            if self.options.auth and signer is None:
                raise CosError("AccessDenied")
            return self.buckets.list_buckets()
        storage = self.parts.storage
        anonymous = self.options.auth and signer is None
        if method == "PUT" and not storage.has_bucket(target.bucket):
            if anonymous:
                raise CosError("AccessDenied")
            if target.key is not None:
                # Convenience for a local emulator: the first PUT into a bucket creates it.
                storage.create_bucket(target.bucket)
        else:
            bucket = storage.bucket(target.bucket)  # NoSuchBucket
            if anonymous and not (bucket.public_read and method in ("GET", "HEAD")):
                raise CosError("AccessDenied")
        if target.key is None:
            return await self.buckets.dispatch(method, target.bucket, query, record)
        if method in ("GET", "HEAD"):
            return await self.objects.get_or_head(request, target.bucket, target.key, query, record)
        if method == "PUT":
            return await self.objects.put(request, target.bucket, target.key, query)
        if method == "DELETE":
            return await self.objects.delete(target.bucket, target.key)
        raise CosError("MethodNotAllowed")

    def _error(
        self,
        request: web.Request,
        error: CosError,
        target: Target,
        host: str | None,
        record: RequestRecord,
    ) -> web.StreamResponse:
        trace_id = new_trace_id()
        headers = {**error.headers, "x-cos-trace-id": trace_id}
        if request.method == "HEAD":
            return web.Response(status=error.status, headers=headers)
        resource = f"{host or ''}{target.path}"
        body = error_xml(error, resource=resource, request_id=record.request_id, trace_id=trace_id)
        return web.Response(
            status=error.status, body=body, headers=headers, content_type="application/xml"
        )
