"""A local COS server for tests, demos and benchmarks: real HTTP, COS's headers, signatures,
errors and listing, plus fault injection and a request log.

Default test credentials (used when none are given; documented so tests and users can sign):

    SecretId  = "AKIDcosfastEmulatorTestKey00000000"
    SecretKey = "cosfastEmulatorTestSecret0000000"

These are local test credentials, not secrets: the emulator accepts them, nothing else does.

    from cosfast.emulator import Emulator, Fault
    with Emulator() as emu:
        emu.create_bucket("examplebucket-1250000000")
        emu.put_object("examplebucket-1250000000", "a.txt", b"hello")
        config = qcloud_cos.CosConfig(**emu.sdk_config())   # Region, keys, IP, Port, Scheme

From a shell: ``python -m cosfast.emulator --root DIR --port 9000 --bucket NAME-APPID``.
Needs aiohttp (``pip install cosfast[emulator]``).
"""

from __future__ import annotations

try:
    import aiohttp  # noqa: F401  (checked here to name the fix)
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("cosfast.emulator needs aiohttp: pip install 'cosfast[emulator]'") from exc

from cosfast.emulator.auth import Credentials
from cosfast.emulator.errors import CosError
from cosfast.emulator.faults import KINDS as FAULT_KINDS
from cosfast.emulator.faults import Fault
from cosfast.emulator.requestlog import RequestRecord
from cosfast.emulator.server import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator
from cosfast.emulator.storage import ObjectInfo

__all__ = [
    "DEFAULT_SECRET_ID",
    "DEFAULT_SECRET_KEY",
    "FAULT_KINDS",
    "CosError",
    "Credentials",
    "Emulator",
    "Fault",
    "ObjectInfo",
    "RequestRecord",
]
