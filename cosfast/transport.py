"""HTTP for the facade on pycurl: pooled handles, TLS, proxies, timeouts, retries.

Each pooled slot is an easy handle with its own multi handle. libcurl keeps finished
connections in the multi handle's cache, so a slot taken from the pool reuses its kept-alive
connection; the pool grows to the number of requests a client runs at once and no further.
A transfer is pumped by the thread that wants its bytes (``Exchange``): no helper thread,
and a reader that stops reading pauses the transfer (``WRITEFUNC_PAUSE``), which bounds
the memory of a streamed body.

Nothing here logs headers: they carry the Authorization and the security token.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

import certifi
import pycurl

from cosfast import partwriter
from cosfast.cos_exception import CosClientError
from cosfast.request import PreparedRequest
from cosfast.transfer.attempt import RETRYABLE_CURL_ERRORS
from cosfast.transfer.response import HeaderParser, parse_header_lines
from cosfast.transfer.retry import RETRYABLE_STATUS, RetryPolicy, parse_retry_after

__all__ = [
    "BUFFER_SIZE",
    "ConnectionFailure",
    "Exchange",
    "HandlePool",
    "HeaderParser",
    "Transport",
    "configure_curl",
    "curl_failure",
    "parse_header_lines",
    "read_up_to",
    "retryable_status",
]

logger = logging.getLogger(__name__)

#: libcurl's receive buffer: 512 KiB, so a body moves in few write callbacks (default 16 KiB).
BUFFER_SIZE = 512 * 1024
# A streamed body pauses its transfer once this much is buffered and unread.
_STREAM_HIGH_WATER = 2 * 1024 * 1024
# Longest a pump waits in select() before asking libcurl again (its timers may be longer).
_SELECT_CAP = 1.0
# Error bodies are read into memory to build CosServiceError; more than this is cut off.
ERROR_BODY_LIMIT = 1024 * 1024
# Not in every pycurl release; the libcurl option number is stable (7.54+).
_SUPPRESS_CONNECT_HEADERS = getattr(pycurl, "SUPPRESS_CONNECT_HEADERS", 265)

class ConnectionFailure(CosClientError):
    """The transfer failed below HTTP (connect, TLS, timeout, broken connection).

    ``retryable`` says whether another attempt may succeed; ``curl_code`` is libcurl's."""

    def __init__(self, message: str, *, curl_code: int = 0, retryable: bool = False) -> None:
        CosClientError.__init__(self, message)
        self.curl_code = curl_code
        self.retryable = retryable

    def __reduce__(self) -> tuple:
        return (_rebuild_failure, (self._message, self.curl_code, self.retryable))


def _rebuild_failure(message: str, curl_code: int, retryable: bool) -> ConnectionFailure:
    return ConnectionFailure(message, curl_code=curl_code, retryable=retryable)


def _public_url(url: str) -> str:
    """The URL without its query, for messages (presigned queries carry signatures)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def curl_failure(method: str, url: str, code: int, message: str) -> ConnectionFailure:
    """The CosClientError for a libcurl error code, saying what failed and whether to retry."""
    return ConnectionFailure(
        f"{method} {_public_url(url)} failed: {message} (curl error {code})",
        curl_code=code,
        retryable=code in RETRYABLE_CURL_ERRORS,
    )


def retryable_status(status: int) -> bool:
    """5xx and 429 are retried; every other 4xx is final."""
    return status >= 500 or status in RETRYABLE_STATUS


def _proxy_for(proxies: Any, scheme: str) -> Optional[str]:
    if not proxies:
        return None
    if not isinstance(proxies, dict):
        raise CosClientError("Proxies must be a dict like {'https': 'http://host:port'}")
    return proxies.get(scheme) or proxies.get("all")


def configure_curl(curl: pycurl.Curl, config: Any, *, buffer_size: int = BUFFER_SIZE) -> None:
    """Apply a CosConfig's transport settings to an easy handle.

    TLS verification on (certifi's CA bundle unless VerifySSL names one; VerifySSL=False
    turns it off), SSLCert as client certificate, Proxies for the config's scheme, Timeout
    as connect timeout and as the time a transfer may stall (below 1 byte/s) before it is
    aborted, the UA, TCP keep-alive, no redirects, http/https only, paths sent as given."""
    curl.setopt(pycurl.NOSIGNAL, 1)
    curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
    curl.setopt(pycurl.REDIR_PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
    curl.setopt(pycurl.FOLLOWLOCATION, 0)
    curl.setopt(pycurl.PATH_AS_IS, 1)
    curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
    curl.setopt(pycurl.BUFFERSIZE, buffer_size)
    curl.setopt(pycurl.TCP_NODELAY, 1)
    curl.setopt(pycurl.TCP_KEEPALIVE, 1)
    curl.setopt(_SUPPRESS_CONNECT_HEADERS, 1)
    timeout = config.timeout()
    curl.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(timeout * 1000)))
    curl.setopt(pycurl.LOW_SPEED_LIMIT, 1)
    curl.setopt(pycurl.LOW_SPEED_TIME, max(1, math.ceil(timeout)))
    ua = config._ua
    if ua is not None:
        curl.setopt(pycurl.USERAGENT, ua)
    if config._keep_alive is False:
        curl.setopt(pycurl.FORBID_REUSE, 1)
    verify = config._verify_ssl
    if verify is False:
        curl.setopt(pycurl.SSL_VERIFYPEER, 0)
        curl.setopt(pycurl.SSL_VERIFYHOST, 0)
    else:
        curl.setopt(pycurl.SSL_VERIFYPEER, 1)
        curl.setopt(pycurl.SSL_VERIFYHOST, 2)
        if isinstance(verify, str) and os.path.isdir(verify):
            curl.setopt(pycurl.CAPATH, verify)
        else:
            curl.setopt(pycurl.CAINFO, verify if isinstance(verify, str) else certifi.where())
    cert = config._ssl_cert
    if isinstance(cert, (tuple, list)):
        curl.setopt(pycurl.SSLCERT, cert[0])
        curl.setopt(pycurl.SSLKEY, cert[1])
    elif cert:
        curl.setopt(pycurl.SSLCERT, cert)
    proxy = _proxy_for(config._proxies, config._scheme)
    if proxy:
        curl.setopt(pycurl.PROXY, proxy)


def read_up_to(read_chunk: Callable[[int], bytes], size: int) -> bytes:
    """``size`` bytes from a ``read_chunk(limit)`` source, fewer only when it ends."""
    parts = []
    have = 0
    while have < size:
        chunk = read_chunk(size - have)
        if not chunk:
            break
        parts.append(chunk)
        have += len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class Slot:
    """An easy handle and the multi handle whose connection cache it keeps."""

    __slots__ = ("curl", "multi")

    def __init__(self) -> None:
        self.curl = pycurl.Curl()
        self.multi = pycurl.CurlMulti()


class HandlePool:
    """Idle slots of one client, most recently used first (its connection is warmest).

    Slots are created only when none is idle, so the pool is as large as the peak number of
    requests in flight. After a fork the child starts empty and never touches the parent's
    handles (their TLS sessions live on sockets the parent still uses)."""

    def __init__(self, config: Any) -> None:
        self._config = config
        self._idle: list = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._inherited: list = []
        self.created = 0

    def acquire(self) -> Slot:
        with self._lock:
            if self._pid != os.getpid():
                self._inherited.extend(self._idle)
                self._idle = []
                self._pid = os.getpid()
            if self._idle:
                slot = self._idle.pop()
            else:
                slot = Slot()
                self.created += 1
        configure_curl(slot.curl, self._config)
        return slot

    def release(self, slot: Slot) -> None:
        slot.curl.reset()
        with self._lock:
            if self._pid == os.getpid():
                self._idle.append(slot)

    def idle_count(self) -> int:
        with self._lock:
            return len(self._idle)


class Exchange:
    """One request and its response on a slot, pumped by the calling thread.

    Body bytes are buffered until read; past ``high_water`` unread bytes the transfer is
    paused until the reader catches up. ``divert(sink)`` sends the rest of the body straight
    to a write callback (the part writer) instead."""

    def __init__(self, pool: HandlePool, request: PreparedRequest, *, head: bool = False,
                 high_water: int = _STREAM_HIGH_WATER) -> None:
        self.request = request
        self.parser = HeaderParser()
        self.received = 0
        self._pool = pool
        self._slot: Optional[Slot] = pool.acquire()
        self._high_water = high_water
        self._chunks: deque = deque()
        self._buffered = 0
        self._paused = False
        self._finished = False
        self._failure: Optional[ConnectionFailure] = None
        curl = self._slot.curl
        curl.setopt(pycurl.URL, request.url)
        curl.setopt(pycurl.HTTPHEADER, request.header_lines())
        if head:
            curl.setopt(pycurl.NOBODY, 1)
        else:
            curl.setopt(pycurl.HTTPGET, 1)
        curl.setopt(pycurl.HEADERFUNCTION, self.parser.feed)
        curl.setopt(pycurl.WRITEFUNCTION, self._on_body)
        self._slot.multi.add_handle(curl)

    # -- state ---------------------------------------------------------------------------

    @property
    def status(self) -> int:
        return self.parser.status

    @property
    def headers(self) -> dict:
        return self.parser.headers

    def header(self, name: str, default: Any = None) -> Any:
        return self.parser.get(name, default)

    @property
    def finished(self) -> bool:
        return self._finished

    # -- libcurl callbacks (never raise: pycurl would only print the exception) ----------

    def _on_body(self, data: bytes) -> Optional[int]:
        if self._buffered >= self._high_water:
            self._paused = True
            return pycurl.WRITEFUNC_PAUSE
        self._chunks.append(data)
        self._buffered += len(data)
        self.received += len(data)
        return None

    # -- pumping ------------------------------------------------------------------------

    def _step(self) -> None:
        multi = self._slot.multi
        try:
            wait_ms = multi.timeout()
            if wait_ms != 0:
                multi.select(_SELECT_CAP if wait_ms < 0 else min(wait_ms / 1000.0, _SELECT_CAP))
            while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                pass
            while True:
                queued, done, failed = multi.info_read()
                if done:
                    self._finished = True
                for _handle, code, message in failed:
                    self._finished = True
                    self._failure = curl_failure(self.request.method, self.request.url,
                                                 code, message)
                if not queued:
                    break
        except pycurl.error as exc:
            code = exc.args[0] if exc.args else 0
            message = exc.args[1] if len(exc.args) > 1 else str(exc)
            self._finished = True
            self._failure = curl_failure(self.request.method, self.request.url, code, message)

    def _pump_until(self, ready: Callable[[], bool]) -> None:
        while not ready() and not self._finished:
            self._step()
        if self._finished and self._failure is not None and not ready():
            raise self._failure

    def _unpause(self) -> None:
        if self._paused:
            self._paused = False
            try:
                self._slot.curl.pause(pycurl.PAUSE_CONT)
            except pycurl.error as exc:
                self._finished = True
                self._failure = curl_failure(self.request.method, self.request.url,
                                             exc.args[0], str(exc.args[-1]))

    def wait_headers(self) -> None:
        """Block until the final response's headers are in (raises ConnectionFailure)."""
        self._pump_until(lambda: self.parser.complete)
        if not self.parser.complete:
            raise self._failure or ConnectionFailure(
                f"{self.request.method} {_public_url(self.request.url)}: "
                "the connection closed before a complete response header",
                retryable=True,
            )

    def read_chunk(self, limit: int) -> bytes:
        """Up to ``limit`` body bytes, at least one unless the body ended (then b'').

        A transfer that broke raises ConnectionFailure once the buffered bytes are read."""
        if not self._chunks:
            self._unpause()
            self._pump_until(lambda: bool(self._chunks))
            if not self._chunks:
                return b""
        head = self._chunks[0]
        if len(head) <= limit:
            self._chunks.popleft()
        else:
            self._chunks[0] = head[limit:]
            head = head[:limit]
        self._buffered -= len(head)
        if self._buffered < self._high_water // 2:
            self._unpause()
        return head

    def read_all(self, limit: int) -> bytes:
        """The rest of the body, at most ``limit`` bytes (the remainder is dropped)."""
        return read_up_to(self.read_chunk, limit)

    def divert(self, sink: Callable[[bytes], Optional[int]]) -> None:
        """Send the buffered and all further body bytes to ``sink`` (a write callback that
        takes memoryviews and returns None when it took the bytes). Raises ConnectionFailure
        if the transfer breaks; a refusal by the sink ends the transfer with libcurl's write
        error (the sink keeps the cause)."""
        while self._chunks:
            chunk = self._chunks.popleft()
            self._buffered -= len(chunk)
            if sink(chunk) is not None:
                raise ConnectionFailure(
                    f"{self.request.method} {_public_url(self.request.url)}: "
                    "the body could not be written"
                )
        curl = self._slot.curl
        # A PartSink gets libcurl's chunks through the part writer's C callback (see
        # partwriter.bind_writer); ``writer`` must outlive every call of it.
        writer = partwriter.bind_writer(curl, sink, sink)
        try:
            self._unpause()
            self._pump_until(lambda: False)
        finally:
            curl.setopt(pycurl.WRITEFUNCTION, self._on_body)  # no callback into ``writer`` any more
            del writer

    def drain(self, limit: int = 64 * 1024) -> None:
        """Read and drop what is left of a short body, then close: a connection whose
        response was read to the end stays in the pool."""
        try:
            self.read_all(limit)
        except ConnectionFailure:
            pass
        self.close()

    def close(self) -> None:
        """Stop the transfer (if running) and return the handle to the pool. Idempotent."""
        slot = self._slot
        if slot is None:
            return
        self._slot = None
        self._chunks.clear()
        try:
            slot.multi.remove_handle(slot.curl)
        except pycurl.error:
            pass
        self._pool.release(slot)

    def __del__(self) -> None:
        # An abandoned exchange must not keep the handle in its multi; it is not returned
        # to the pool from here (the finalizer may run on any thread).
        slot = self._slot
        if slot is not None:
            self._slot = None
            try:
                slot.multi.remove_handle(slot.curl)
            except pycurl.error:
                pass  # the handle is being torn down anyway


class Transport:
    """A client's HTTP: the handle pool and the retry loop around opening a response."""

    def __init__(self, config: Any, policy: RetryPolicy) -> None:
        self.config = config
        self.policy = policy
        self.pool = HandlePool(config)

    def open(self, build: Callable[[bool], PreparedRequest], *, head: bool = False,
             switchable: Callable[[str], bool] = lambda url: False) -> Exchange:
        """Send a request and return its exchange with the final headers in.

        ``build(switch_host)`` signs the request (again) for each attempt. Connection
        failures, timeouts, 5xx and 429 are retried per the policy, honouring Retry-After;
        the last attempt's error response is returned for the caller to raise. When
        ``switchable(url)`` holds for a URL whose attempt failed without a COS request id,
        later attempts are built with ``switch_host=True``."""
        switch_host = False
        retry_after: Optional[float] = None
        attempts = max(1, self.policy.max_attempts)
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.policy.delay(attempt, retry_after))
            last = attempt == attempts - 1
            request = build(switch_host)
            exchange = Exchange(self.pool, request, head=head)
            try:
                exchange.wait_headers()
            except ConnectionFailure as exc:
                exchange.close()
                if last or not exc.retryable:
                    raise
                logger.info("retrying %s %s after: %s", request.method,
                            _public_url(request.url), exc)
                retry_after = None
                switch_host = switch_host or switchable(request.url)
                continue
            if last or not retryable_status(exchange.status):
                return exchange
            logger.info("retrying %s %s after HTTP %d", request.method,
                        _public_url(request.url), exchange.status)
            retry_after = parse_retry_after(exchange.header("Retry-After"))
            if exchange.header("x-cos-request-id") is None:
                switch_host = switch_host or switchable(request.url)
            exchange.drain()
        raise AssertionError("unreachable: the last attempt returns or raises")
