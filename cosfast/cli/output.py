"""Where the command's results and messages go.

Human mode: results on stdout, notes and errors on stderr. ``--quiet``: only errors. ``--json``:
stdout carries only JSON, one document per line, each with a ``type`` (``object``, ``prefix``,
``result``, ``summary``, ``error``), so scripts can read it line by line; errors still also go to
stderr as one line."""
from __future__ import annotations

import json
from typing import TextIO

from cosfast.cli.errors import redact


class Output:
    def __init__(self, *, stdout: TextIO, stderr: TextIO, json_mode: bool, quiet: bool,
                 secrets: tuple[str, ...] = ()) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.json_mode = json_mode
        self.quiet = quiet
        self.secrets = secrets

    @property
    def shows_progress(self) -> bool:
        return not (self.json_mode or self.quiet)

    def record(self, doc: dict, human: str) -> None:
        """One result: a JSON line in --json mode, else ``human`` on stdout unless --quiet."""
        if self.json_mode:
            self.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
            self.stdout.flush()
        elif not self.quiet:
            self.stdout.write(human + "\n")
            self.stdout.flush()

    def note(self, text: str) -> None:
        """Information for a person (stderr), not shown with --quiet or --json."""
        if self.shows_progress:
            self.stderr.write(text + "\n")
            self.stderr.flush()

    def warn(self, text: str) -> None:
        """A problem that does not end the command (stderr, always)."""
        self.stderr.write(f"cosfast: {redact(text, self.secrets)}\n")
        self.stderr.flush()

    def error(self, code: int, message: str) -> None:
        message = redact(message, self.secrets)
        self.stderr.write(f"cosfast: error: {message}\n")
        self.stderr.flush()
        if self.json_mode:
            self.stdout.write(json.dumps({"type": "error", "exit_code": code, "message": message},
                                         ensure_ascii=False) + "\n")
            self.stdout.flush()
