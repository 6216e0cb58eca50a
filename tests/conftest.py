"""Shared test setup: plots render headless."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")
