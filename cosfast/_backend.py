"""Chooses between the compiled modules and their pure-Python twins, once, at import.

COSFAST_NO_EXTENSIONS=1 forces the twins (the test oracle). Without it, a missing compiled
module is an error unless the package was never built: an installed cosfast must not fall back
silently to code that is 100x slower."""
from __future__ import annotations

import importlib
import os
from types import ModuleType

NO_EXTENSIONS = os.environ.get("COSFAST_NO_EXTENSIONS", "") not in ("", "0")


def load(name: str) -> tuple[ModuleType, str]:
    """Returns (module, backend) for cosfast.<name>: the compiled one unless told otherwise."""
    if NO_EXTENSIONS:
        return importlib.import_module(f"cosfast.{name}_py"), "python"
    try:
        return importlib.import_module(f"cosfast.{name}"), "compiled"
    except ImportError as exc:
        raise ImportError(
            f"cosfast's compiled module cosfast.{name} is missing ({exc}); build it with "
            "`pip install -e .` (or `python setup.py build_ext --inplace`), or set "
            "COSFAST_NO_EXTENSIONS=1 to use the slow pure-Python twin"
        ) from exc
