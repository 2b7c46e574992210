"""GET, HEAD, PUT and DELETE Object."""

from __future__ import annotations

import asyncio
from typing import BinaryIO

from aiohttp import web

from cosfast.emulator.bodies import BodyJob, Shaping, invert, send_body
from cosfast.emulator.errors import CosError
from cosfast.emulator.faults import (
    BEFORE_KINDS,
    BODY_KINDS,
    Candidate,
    Fault,
    FaultSet,
    answer_before,
)
from cosfast.emulator.requestlog import RequestRecord
from cosfast.emulator.rules import (
    check_conditions,
    parse_range,
    resolve_range,
    response_overrides,
    traffic_limit,
)
from cosfast.emulator.storage import (
    STORED_HEADERS,
    ObjectInfo,
    PutOptions,
    Storage,
    copy_file_chunks,
)

_READ_CHUNK = 1 << 20


def object_headers(info: ObjectInfo) -> dict[str, str]:
    """The headers GET and HEAD send for a stored object (before any response-* override)."""
    headers = {
        "Content-Type": info.content_type,
        "ETag": info.etag,
        "Last-Modified": info.last_modified,
        "Accept-Ranges": "bytes",
        **info.headers,
        **info.metadata,
    }
    if info.crc64 is not None:
        headers["x-cos-hash-crc64ecma"] = str(info.crc64)
    if info.version_id is not None:
        headers["x-cos-version-id"] = info.version_id
    return headers


def replacement_chunks(storage: Storage, bucket: str, key: str, new_data: bytes | None):
    """New content for ``key``: ``new_data``, or the current bytes inverted (new ETag)."""
    if new_data is not None:
        return [new_data]
    current = storage.lookup(bucket, key)
    if current.size == 0:
        return [b"replaced"]
    return (invert(chunk) for chunk in copy_file_chunks(current.path))


def replace_object(storage: Storage, bucket: str, key: str, new_data: bytes | None) -> ObjectInfo:
    """Replaces an object's content, keeping its content type, headers, metadata and CRC flag."""
    current = storage.lookup(bucket, key)
    options = PutOptions(
        content_type=current.content_type,
        headers=current.headers,
        metadata=current.metadata,
        with_crc=current.crc64 is not None,
    )
    return storage.put_stream(
        bucket, key, replacement_chunks(storage, bucket, key, new_data), options
    )


class ObjectHandlers:
    def __init__(self, storage: Storage, faults: FaultSet) -> None:
        self.storage = storage
        self.faults = faults

    async def get_or_head(
        self, request: web.Request, bucket: str, key: str, query: dict, record: RequestRecord
    ) -> web.StreamResponse:
        method = request.method
        rate = traffic_limit(request.headers, query)
        spec = parse_range(request.headers.get("Range"))
        version_id = query.get("versionId")
        candidate = Candidate(
            method=method,
            bucket=bucket,
            key=key,
            range_start=spec.first if spec else None,
            ranged=spec is not None,
        )
        answered = await self._before(
            self.faults.select(candidate, BEFORE_KINDS), bucket, key, record
        )
        if answered is not None:
            return answered

        info, f = self._open(bucket, key, version_id)
        try:
            headers = {**object_headers(info), **record.stamp()}
            verdict = check_conditions(request.headers, info.etag, info.mtime)
            if verdict == 412:
                raise CosError("PreconditionFailed")
            if verdict == 304:
                return web.Response(
                    status=304, headers={"ETag": info.etag, "Last-Modified": info.last_modified}
                )
            first, end = resolve_range(spec, info.size) if spec else (0, info.size)
            body_faults: list[Fault] = []
            if method == "GET":
                body_faults = self.faults.select(
                    Candidate(
                        method, bucket, key, first if spec else None, spec is not None, (first, end)
                    ),
                    BODY_KINDS,
                )
            record.faults += [fault.kind for fault in body_faults]
            status = 200
            if spec is not None and not any(fault.kind == "full200" for fault in body_faults):
                status = 206
                headers["Content-Range"] = f"bytes {first}-{end - 1}/{info.size}"
            else:
                first, end = 0, info.size
            headers.update(response_overrides(query))
            response = web.StreamResponse(status=status, headers=headers)
            if method == "HEAD":
                response.content_length = end - first
                return response
            job = BodyJob(request, response, f, first, end - first, record)
            await send_body(job, Shaping.from_faults(body_faults, rate))
            return response
        finally:
            f.close()

    def _open(self, bucket: str, key: str, version_id: str | None) -> tuple[ObjectInfo, BinaryIO]:
        """The version to serve with its data file open. A PUT may replace the object (and
        unlink its file) between the lookup and the open; then the newer version is served."""
        for _attempt in range(8):
            info = self.storage.lookup(bucket, key, version_id)
            try:
                return info, open(info.path, "rb")
            except FileNotFoundError:
                continue
        raise CosError("InternalError", "the object kept changing while being opened")

    async def _before(
        self, faults: list[Fault], bucket: str, key: str, record: RequestRecord
    ) -> web.Response | None:
        """Applies the faults decided before the object is read; a response ends the request."""
        record.faults += [fault.kind for fault in faults]
        for fault in faults:
            if fault.kind == "replace":
                await asyncio.get_running_loop().run_in_executor(
                    None, replace_object, self.storage, bucket, key, fault.new_data
                )
        return await answer_before(faults)

    async def put(
        self, request: web.Request, bucket: str, key: str, query: dict
    ) -> web.StreamResponse:
        if "x-cos-copy-source" in request.headers:
            raise CosError("NotImplemented", "PUT Object - Copy is not emulated")
        traffic_limit(request.headers, query)  # validated as COS does; uploads are not paced
        writer = self.storage.writer(bucket)
        try:
            async for chunk in request.content.iter_chunked(_READ_CHUNK):
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        options = PutOptions(
            content_type=request.headers.get("Content-Type"),
            headers={h: request.headers[h] for h in STORED_HEADERS if h in request.headers},
            metadata={
                k: v for k, v in request.headers.items() if k.lower().startswith("x-cos-meta-")
            },
            content_md5=request.headers.get("Content-MD5"),
        )
        info = self.storage.commit(bucket, key, writer, options)
        headers = {"ETag": info.etag}
        if info.crc64 is not None:
            headers["x-cos-hash-crc64ecma"] = str(info.crc64)
        if info.version_id is not None:
            headers["x-cos-version-id"] = info.version_id
        return web.Response(status=200, headers=headers)

    async def delete(self, bucket: str, key: str) -> web.StreamResponse:
        self.storage.delete(bucket, key)
        return web.Response(status=204)
