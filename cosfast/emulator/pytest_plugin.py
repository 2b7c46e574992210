"""pytest fixtures for the emulator (used by cosfast's own tests; users may import them too).

* ``cos_emulator`` (session): one server for the whole run, auth on, the default test key pair.
* ``emulator`` (function): that same server with faults and the log cleared, and a fresh,
  uniquely named bucket ``emulator.bucket`` for the test (an :class:`EmulatorScope`).
* ``make_emulator`` (function): a factory for separate servers with other options
  (``make_emulator(auth=False)``, ``make_emulator(tls=...)``, ``make_emulator(admin=True)``),
  each closed when the test ends.
* ``tls_files`` (session): a throwaway CA and a certificate for 127.0.0.1/localhost (trustme).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from cosfast.emulator.server import Emulator
from cosfast.emulator.storage import ObjectInfo

TEST_APPID = "1250000000"
_bucket_numbers = itertools.count(1)


def unique_bucket_name() -> str:
    return f"t{next(_bucket_numbers)}-{secrets.token_hex(3)}-{TEST_APPID}"


class EmulatorScope:
    """The session emulator as one test sees it: every Emulator attribute, plus ``bucket``
    (created for this test) and shortcuts that default to it."""

    def __init__(self, server: Emulator, bucket: str) -> None:
        self.server = server
        self.bucket = bucket

    def __getattr__(self, name: str) -> Any:
        return getattr(self.server, name)

    def put(self, key: str, data: bytes | None = None, **options: Any) -> ObjectInfo:
        """``put_object`` into this test's bucket."""
        return self.server.put_object(self.bucket, key, data, **options)

    def __repr__(self) -> str:
        return f"EmulatorScope(bucket={self.bucket!r}, server={self.server!r})"


@dataclass(frozen=True)
class TlsFiles:
    certfile: Path  # server certificate chain (PEM), for 127.0.0.1 and localhost
    keyfile: Path
    ca_file: Path  # the CA that signed it: what a client must trust


@pytest.fixture(scope="session")
def cos_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(tmp_path_factory.mktemp("cos-emulator")) as server:
        yield server


@pytest.fixture
def emulator(cos_emulator: Emulator) -> Iterator[EmulatorScope]:
    cos_emulator.clear_faults()
    cos_emulator.clear_log()
    scope = EmulatorScope(cos_emulator, cos_emulator.create_bucket(unique_bucket_name()))
    yield scope
    cos_emulator.clear_faults()


@pytest.fixture
def make_emulator(tmp_path: Path) -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def make(**options: Any) -> Emulator:
        options.setdefault("root", tmp_path / f"emulator-{len(started)}")
        server = Emulator(**options).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    import trustme

    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(folder / "server.pem", folder / "server.key", folder / "ca.pem")
    cert.cert_chain_pems[0].write_to_path(str(files.certfile))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(files.certfile), append=True)
    cert.private_key_pem.write_to_path(str(files.keyfile))
    ca.cert_pem.write_to_path(str(files.ca_file))
    return files
