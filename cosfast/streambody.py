"""``StreamBody``: the body of ``get_object``, as the SDK's, streamed with bounded memory.

How it streams: the response's libcurl transfer is pumped by the thread that reads (see
``transport.Exchange``); when more than a few MiB sit unread, the transfer pauses. No
helper thread, nothing to clean up when a reader stops early, and the connection goes back
to the client's pool once the body is read to the end.

Where the SDK gives up, StreamBody carries on: a connection that breaks mid-body is
re-requested from the byte where it stopped, with ``If-Match`` pinned to the ETag of the
first response (an object replaced meanwhile stops the read with a CosClientError instead
of mixing versions). ``get_stream_to_file`` writes through the part writer (CRC-64 computed
as bytes land) into a temp file, checks the length and, for a whole object, COS's
``x-cos-hash-crc64ecma``, and only then renames the file into place.

One visible difference: ``read`` returns ``b''`` at the end (the SDK returns ``''`` on
some paths); ``if not chunk`` loops work with both.
"""
from __future__ import annotations

import io
import logging
import os
import re
import time
import uuid
import zlib
from typing import Any, BinaryIO, Callable, Iterator, Optional

from cosfast import partwriter
from cosfast.cos_exception import CosClientError, CosServiceError
from cosfast.crc64 import crc64
from cosfast.transfer.localfs import unlink_quietly
from cosfast.transfer.response import parse_decimal
from cosfast.transfer.retry import RetryPolicy
from cosfast.transport import ConnectionFailure, Exchange, read_up_to

__all__ = ["StreamBody"]

logger = logging.getLogger(__name__)

_CONTENT_RANGE = re.compile(r"^bytes ([0-9]+)-([0-9]+)/([0-9]+|\*)$")
# Chunk size of get_stream_to_file's decoded/unknown-length path and of iteration.
_COPY_CHUNK = 1024 * 1024

# Bytes a resumed exchange must deliver before its failure stops counting against the attempts.
_PROGRESS_RESET = 1024 * 1024

_DEFAULT_POLICY = RetryPolicy()

Reopen = Callable[[int, Optional[int], str], Exchange]


class _GzipDecoder:
    """gzip, including several concatenated members (as urllib3 decodes them)."""

    def __init__(self) -> None:
        self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            out.append(self._obj.decompress(data))
            data = self._obj.unused_data
            if data:
                self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return b"".join(out)

    def flush(self) -> bytes:
        return self._obj.flush()


class _DeflateDecoder:
    """``deflate`` as servers send it: zlib-wrapped, or raw deflate (urllib3's fallback)."""

    def __init__(self) -> None:
        self._obj = zlib.decompressobj()
        self._first: Optional[bytes] = b""

    def decompress(self, data: bytes) -> bytes:
        if self._first is None:
            return self._obj.decompress(data)
        self._first += data
        try:
            out = self._obj.decompress(data)
        except zlib.error:
            self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
            data, self._first = self._first, None
            return self._obj.decompress(data)
        if out:
            self._first = None
        return out

    def flush(self) -> bytes:
        return self._obj.flush()


def _decoder_for(encoding: Optional[str]) -> Any:
    name = (encoding or "").strip().lower()
    if name in ("gzip", "x-gzip"):
        return _GzipDecoder()
    if name == "deflate":
        return _DeflateDecoder()
    return None


class StreamBody:
    """The body of one GET; read it once, by any of the methods below."""

    def __init__(self, exchange: Exchange, reopen: Optional[Reopen] = None, *,
                 policy: RetryPolicy = _DEFAULT_POLICY) -> None:
        self._exchange: Optional[Exchange] = exchange
        self._reopen = reopen
        self._policy = policy
        self._read_len = 0
        self._use_chunked = False
        header = exchange.header
        length = parse_decimal(header("Content-Length"))
        if length is not None:
            self._content_len = length
        elif (header("Transfer-Encoding") or "").lower() == "chunked":
            self._content_len = 0
            self._use_chunked = True
        else:
            exchange.close()
            raise OSError("create StreamBody failed without Content-Length header or "
                          "Transfer-Encoding header")
        self._encoding = header("Content-Encoding")
        self._use_encoding = self._encoding is not None
        self._etag = header("ETag")
        self._server_crc = header("x-cos-hash-crc64ecma")
        # The absolute byte span this response carries, to re-request the rest of it.
        match = _CONTENT_RANGE.match((header("Content-Range") or "").strip())
        if exchange.status == 206 and match:
            self._first = int(match.group(1))
            self._last: Optional[int] = int(match.group(2))
            self._total = match.group(3)
            self._whole = False
        else:
            self._first = 0
            self._last = None if self._use_chunked else self._content_len - 1
            self._total = "*" if self._use_chunked else str(self._content_len)
            self._whole = exchange.status == 200
        self._delivered = 0
        self._delivered_at_failure = 0
        self._failures = 0
        self._decoder: Any = None
        self._decoder_done = False

    def __len__(self) -> int:
        return self._content_len

    def __iter__(self) -> Iterator[bytes]:
        return self.get_stream(_COPY_CHUNK)

    def __enter__(self) -> "StreamBody":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading; the rest of the body is not downloaded."""
        exchange, self._exchange = self._exchange, None
        if exchange is not None:
            exchange.close()

    # -- raw bytes, resumed across broken connections ------------------------------------

    def _raw_chunk(self, limit: int) -> bytes:
        """Up to ``limit`` raw body bytes; b'' at the end of the body."""
        while self._exchange is not None:
            try:
                chunk = self._exchange.read_chunk(limit)
            except ConnectionFailure as exc:
                self._resume(exc)
                continue
            if chunk:
                self._delivered += len(chunk)
                return chunk
            self.close()
        return b""

    def _resume(self, failure: ConnectionFailure) -> None:
        """Replace the broken exchange by a request for the bytes not yet delivered."""
        self.close()
        if not failure.retryable or self._reopen is None or not self._etag:
            raise failure
        # Only real progress earns a fresh set of attempts: a server that drops every
        # connection after a few bytes must not keep the reader retrying forever.
        if self._delivered - self._delivered_at_failure >= _PROGRESS_RESET:
            self._failures = 0
        self._delivered_at_failure = self._delivered
        self._failures += 1
        if self._failures >= self._policy.max_attempts:
            raise ConnectionFailure(
                f"{failure} (gave up after {self._failures} broken connections without progress)",
                curl_code=failure.curl_code,
            )
        first = self._first + self._delivered
        if self._last is not None and first > self._last:
            return  # every byte arrived; only the end of the exchange was lost
        time.sleep(self._policy.delay(self._failures))
        logger.info("body broke after %d bytes (%s); resuming with If-Match",
                    self._delivered, failure)
        try:
            exchange = self._reopen(first, self._last, self._etag)
        except CosServiceError as exc:
            if exc.get_status_code() == 412:
                raise CosClientError(
                    "the object changed on the server while its body was being read (its ETag "
                    f"no longer matches {self._etag}); the read stopped after "
                    f"{self._delivered} bytes"
                ) from None
            raise
        expected = f"bytes {first}-{'' if self._last is None else self._last}"
        got = exchange.header("Content-Range") or ""
        if exchange.status != 206 or not got.startswith(expected) or (
                self._last is not None and got != f"{expected}/{self._total}"
                and self._total != "*"):
            exchange.close()
            raise CosClientError(
                f"resuming the body at byte {first}: expected a 206 with Content-Range "
                f"{expected}/{self._total}, got {exchange.status} {got!r}"
            )
        self._exchange = exchange

    def _read_exact(self, size: int) -> bytes:
        """``size`` raw bytes, fewer only at the end of the body."""
        return read_up_to(self._raw_chunk, size)

    # -- decoded bytes ------------------------------------------------------------------

    def _read_decoded(self, size: int) -> bytes:
        """The next non-empty run of decoded bytes from ``size`` raw bytes, b'' at the end."""
        if self._decoder is None:
            self._decoder = _decoder_for(self._encoding) or False
        if self._decoder is False:
            return self._read_exact(size)
        while True:
            raw = self._read_exact(size)
            if not raw:
                if self._decoder_done:
                    return b""
                self._decoder_done = True
                return self._decoder.flush()
            out = self._decoder.decompress(raw)
            if out:
                return out

    # -- the SDK's interface ------------------------------------------------------------

    def get_raw_stream(self) -> "_RawStream":
        """A binary file object over the raw (not decompressed) body."""
        return _RawStream(self)

    def get_stream(self, chunk_size: int = 1024) -> Iterator[bytes]:
        """Decoded chunks (Content-Encoding undone, as requests' iter_content)."""
        while True:
            chunk = self._read_decoded(chunk_size)
            if not chunk:
                return
            yield chunk

    def read(self, chunk_size: int = 1024, auto_decompress: bool = False) -> bytes:
        """Raw bytes of a Content-Encoded body unless ``auto_decompress``; otherwise decoded."""
        if self._use_encoding and not auto_decompress:
            return self._read_exact(chunk_size)
        return self._read_decoded(chunk_size)

    def get_stream_to_file(self, file_name: str, disable_tmp_file: bool = False,
                           auto_decompress: bool = False) -> None:
        """Save the (rest of the) body to ``file_name``; nothing is left behind on failure.

        The bytes go to ``{file_name}_{uuid}`` first (to ``file_name`` itself with
        ``disable_tmp_file``), are checked (length; CRC-64 against x-cos-hash-crc64ecma when
        the response is the whole object) and then renamed over ``file_name``."""
        file_name = os.fspath(file_name)
        tmp_name = file_name if disable_tmp_file else f"{file_name}_{uuid.uuid4().hex}"
        decode = self._use_encoding and auto_decompress and _decoder_for(self._encoding)
        try:
            if decode or self._use_chunked:
                self._copy_to_file(tmp_name, decode=bool(decode))
            else:
                self._sink_to_file(tmp_name)
            if tmp_name != file_name:
                os.replace(tmp_name, file_name)
        except BaseException:
            self.close()
            unlink_quietly(tmp_name)
            raise

    def _check_crc(self, crc: int, file_name: str) -> None:
        if self._whole and self._server_crc and str(crc) != self._server_crc.strip():
            raise CosClientError(
                f"CRC-64 of the received bytes is {crc}, COS announced {self._server_crc}; "
                f"{file_name} was not written"
            )

    def _sink_to_file(self, tmp_name: str) -> None:
        """Known length: libcurl writes straight into the part writer, resuming as needed."""
        start = self._delivered
        remaining = self._content_len - start
        with partwriter.TempFile(tmp_name, remaining, create=True) as temp:
            sink = partwriter.PartSink(temp, 0, remaining, stage_size=partwriter.DEFAULT_STAGE_SIZE)
            while self._exchange is not None:
                try:
                    self._exchange.divert(sink)
                except ConnectionFailure as exc:
                    sink.raise_if_failed()  # a local write error (disk full...) is final
                    self._delivered = start + sink.written
                    self._resume(exc)
                    continue
                self._delivered = start + sink.written
                self.close()
        self._read_len = sink.written
        if sink.written != remaining:
            raise OSError("download failed with incomplete file")
        if start == 0:
            self._check_crc(sink.crc, tmp_name)

    def _copy_to_file(self, tmp_name: str, *, decode: bool) -> None:
        """Unknown length or decompression: a plain sequential copy."""
        crc = 0
        self._read_len = 0
        start = self._delivered
        with open(tmp_name, "wb") as fp:
            while True:
                chunk = self._read_decoded(_COPY_CHUNK) if decode else self._raw_chunk(_COPY_CHUNK)
                if not chunk:
                    break
                if not decode:
                    crc = crc64(chunk, crc)
                fp.write(chunk)
                self._read_len += len(chunk)
        if not decode and start == 0:
            self._check_crc(crc, tmp_name)

    def pget_stream_to_file(self, fdst: BinaryIO, offset: int, expected_len: int,
                            auto_decompress: bool = False) -> None:
        """Write the body into an open file at ``offset`` (the SDK's helper for its
        multi-part download)."""
        self._read_len = 0
        fdst.seek(offset, 0)
        while True:
            chunk = self.read(_COPY_CHUNK, auto_decompress)
            if not chunk:
                break
            self._read_len += len(chunk)
            fdst.write(chunk)
        if not self._use_chunked and not (self._use_encoding and auto_decompress) \
                and self._read_len != expected_len:
            raise OSError("download failed with incomplete file")


class _RawStream(io.RawIOBase):
    """``get_raw_stream()``: ``read(n)`` returns n bytes unless the body ends first."""

    def __init__(self, body: StreamBody) -> None:
        super().__init__()
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        chunk = self._body._raw_chunk(len(view))
        view[: len(chunk)] = chunk
        return len(chunk)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        return self._body._read_exact(size)

    def close(self) -> None:
        self._body.close()
        super().close()
