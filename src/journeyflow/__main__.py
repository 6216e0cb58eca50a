"""``python -m journeyflow``: the same command line as ``journeyflow``."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
