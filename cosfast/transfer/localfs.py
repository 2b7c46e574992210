"""Small file-system helpers shared by the transfer layer and the facade."""
from __future__ import annotations

import logging
import os

logger = logging.getLogger("cosfast.localfs")


def unlink_quietly(path: str) -> None:
    """Removes ``path`` if it exists. Cleanup must never hide the error that caused it, so a
    failure other than "already gone" is logged, not raised."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("could not remove %s: %s", path, exc)
