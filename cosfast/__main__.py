"""``python -m cosfast ...``: the same as the ``cosfast`` console script."""
from __future__ import annotations

import sys

from cosfast.cli import main

if __name__ == "__main__":
    sys.exit(main())
