"""Shared helpers for the benchmark scripts: timing, peak memory, machine facts.

Peak memory is measured in a fresh subprocess per (size, implementation): a thread
samples the resident set size while the operation runs, and the peak above the RSS
just before the operation (data already loaded) is reported.
"""

from __future__ import annotations

import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    mem = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}"


class PeakRSS:
    """Context manager sampling RSS every ``interval`` seconds; ``peak_above`` in bytes."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.proc = psutil.Process()
        self.peak = 0
        self.base = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRSS:
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def peak_above(self) -> int:
        return self.peak - self.base


def measure(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, int, Any]:
    """Median seconds over ``repeat`` runs, peak RSS above start of the first run, last result."""
    times = []
    result = None
    peak = 0
    for i in range(repeat):
        result = None
        if i == 0:
            with PeakRSS() as p:
                t0 = time.perf_counter()
                result = fn()
                times.append(time.perf_counter() - t0)
            peak = p.peak_above
        else:
            t0 = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times), peak, result


def fmt_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain Markdown table."""
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    head = "| " + " | ".join(c.ljust(widths[c]) for c in columns) + " |"
    sep = "|" + "|".join("-" * (widths[c] + 2) for c in columns) + "|"
    body = ["| " + " | ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])
