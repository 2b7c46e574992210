"""The server every contender of a suite downloads from, started and seeded by the bench.

- ``emulator`` (default): cosfast's COS emulator in its own process (so it never shares the
  harness's or a contender's GIL), in no-auth mode so that unsigned (curl, aria2c) and
  S3-signed (boto3, obstore) clients can use it as well as COS-signed ones. Seeded by plain
  HTTP PUTs of the corpus files.
- ``nginx``: Debian's nginx with a temporary configuration (nginxconf.py) as a neutral
  sendfile server of the same files.
- ``external``: any endpoint URL; seeded with the official SDK's put_object, signed with
  COS_SECRET_ID / COS_SECRET_KEY.
"""
from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from bench.corpus import Corpus
from bench.nginxconf import render_config, write_list_pages
from bench.procs import child_env, stop_process

READY_TIMEOUT = 30.0
_PUT_BLOCK = 1 << 20


@dataclass(frozen=True)
class Endpoint:
    url: str  # scheme://host:port, no path
    kind: str
    version: str

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)


@contextlib.contextmanager
def serve(kind: str, corpus: Corpus, state_dir: Path, endpoint_url: str | None = None) -> Iterator[Endpoint]:
    """Starts (or for ``external``, reaches) the server, seeds the corpus, yields its endpoint."""
    if kind == "emulator":
        with _emulator(corpus, state_dir) as endpoint:
            yield endpoint
    elif kind == "nginx":
        with _nginx(corpus, state_dir) as endpoint:
            yield endpoint
    elif kind == "external":
        if not endpoint_url:
            raise ValueError("an external server needs --endpoint-url")
        endpoint = Endpoint(endpoint_url.rstrip("/"), "external", "unknown")
        _check_reachable(endpoint)
        _seed_signed(endpoint, corpus)
        yield endpoint
    else:
        raise ValueError(f"unknown server {kind!r}: emulator, nginx or external")


def nginx_version() -> str | None:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if binary is None:
        return None
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False).stderr.strip()
    return out.split("/", 1)[-1] if "/" in out else out


@contextlib.contextmanager
def _emulator(corpus: Corpus, state_dir: Path) -> Iterator[Endpoint]:
    import cosfast

    root = state_dir / "emulator-root"
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    argv = [sys.executable, "-m", "cosfast.emulator", "--root", str(root), "--port", str(port),
            "--no-auth", "--bucket", corpus.bucket]
    with _running(argv, state_dir / "emulator.log", port):
        endpoint = Endpoint(f"http://127.0.0.1:{port}", "emulator", f"cosfast emulator {cosfast.__version__}")
        _seed_unsigned(endpoint, corpus)
        yield endpoint


@contextlib.contextmanager
def _nginx(corpus: Corpus, state_dir: Path) -> Iterator[Endpoint]:
    version = nginx_version()
    if version is None:
        raise RuntimeError("nginx is not installed (Debian package nginx)")
    nginx_dir = state_dir / "nginx"
    for sub in ("tmp", "list"):
        (nginx_dir / sub).mkdir(parents=True, exist_ok=True)
    write_list_pages(corpus, nginx_dir / "list")
    port = _free_port()
    conf = nginx_dir / "nginx.conf"
    conf.write_text(render_config(corpus=corpus, port=port, state_dir=nginx_dir, list_dir=nginx_dir / "list"))
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    argv = [binary, "-c", str(conf), "-p", str(nginx_dir), "-e", str(nginx_dir / "error.log")]
    with _running(argv, nginx_dir / "stderr.log", port):
        yield Endpoint(f"http://127.0.0.1:{port}", "nginx", f"nginx {version}")


@contextlib.contextmanager
def _running(argv: list[str], log_path: Path, port: int) -> Iterator[subprocess.Popen]:
    """Runs a server process until the block ends; fails with its log if it never listens."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=child_env())
    try:
        _wait_listening(proc, port, log_path)
        yield proc
    finally:
        stop_process(proc)


def _wait_listening(proc: subprocess.Popen, port: int, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode}): {_tail(log_path)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.args[0]} did not listen on port {port} in {READY_TIMEOUT:.0f}s: {_tail(log_path)}")


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return " | ".join(lines[-3:]) or "(no output)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed_unsigned(endpoint: Endpoint, corpus: Corpus) -> None:
    """PUTs every corpus file path-style over one kept-alive connection (no-auth server)."""
    conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=120, blocksize=_PUT_BLOCK)
    try:
        _put_all(conn, corpus)
    except OSError as exc:
        raise RuntimeError(f"seeding {endpoint.url} failed: {exc}") from None
    finally:
        conn.close()


def _put_all(conn: http.client.HTTPConnection, corpus: Corpus) -> None:
    for obj in corpus.objects:
        with open(corpus.path(obj), "rb") as body:
            conn.request("PUT", f"/{corpus.bucket}/{quote(obj.key, safe='/-_.~')}", body=body,
                         headers={"Content-Length": str(obj.size),
                                  "Authorization": "q-sign-algorithm=sha1&bench=no-auth"})
            response = conn.getresponse()
            detail = response.read()[:300]
        if response.status != 200:
            raise RuntimeError(f"seeding {obj.key} failed: HTTP {response.status} {detail!r}")


def _check_reachable(endpoint: Endpoint) -> None:
    """Fails in a second, not after the SDK's retries, when nothing listens there."""
    try:
        socket.create_connection((endpoint.host, endpoint.port), timeout=5).close()
    except OSError as exc:
        raise RuntimeError(f"seeding {endpoint.url} failed: cannot connect: {exc}") from None


def _seed_signed(endpoint: Endpoint, corpus: Corpus) -> None:
    from bench.sdkconfig import sdk_client

    client = sdk_client(endpoint)
    try:
        for obj in corpus.objects:
            with open(corpus.path(obj), "rb") as body:
                client.put_object(Bucket=corpus.bucket, Key=obj.key, Body=body)
    except Exception as exc:  # noqa: BLE001 - the SDK's and requests' errors alike: one line for the user
        raise RuntimeError(f"seeding {endpoint.url} failed: {type(exc).__name__}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""
