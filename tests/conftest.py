"""Shared fixtures: the COS emulator (see cosfast/emulator/pytest_plugin.py for what each gives)."""

from __future__ import annotations

from cosfast.emulator.pytest_plugin import (  # noqa: F401  (fixtures, found by name)
    EmulatorScope,
    TlsFiles,
    cos_emulator,
    emulator,
    make_emulator,
    tls_files,
)
