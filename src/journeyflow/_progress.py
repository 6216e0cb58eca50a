"""Progress reporting and per-stage profiling for the report (private).

:class:`Progress` is the callback protocol :func:`journeyflow.run_report` calls: it
announces each stage as it starts and ends. The default does nothing; the command
line uses :class:`TerminalProgress` (stderr, only when stderr is a terminal).
:class:`StageTimer` measures wall time and peak resident memory per stage.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, Protocol

__all__ = ["NullProgress", "Progress", "StageRecord", "StageTimer", "TerminalProgress"]


class Progress(Protocol):
    """What the report tells a progress display."""

    def start(self, stage: str, index: int, total: int) -> None:
        """Stage number ``index`` (1-based) of ``total`` starts."""

    def finish(self, stage: str, status: str, seconds: float) -> None:
        """The stage ended with ``status`` ("ok" or "skipped: ...") after ``seconds``."""


class NullProgress:
    """A progress display that shows nothing (the library default)."""

    def start(self, stage: str, index: int, total: int) -> None:
        """Do nothing."""

    def finish(self, stage: str, status: str, seconds: float) -> None:
        """Do nothing."""


class TerminalProgress:
    """One status line per stage on a terminal stream (stderr), overwritten in place."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self._index = 0
        self._total = 0

    def start(self, stage: str, index: int, total: int) -> None:
        """Show ``[index/total] stage ...``."""
        self._index, self._total = index, total
        width = 20
        filled = width * (index - 1) // max(total, 1)
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r\x1b[2K[{bar}] {index}/{total} {stage} ...")
        self.stream.flush()

    def finish(self, stage: str, status: str, seconds: float) -> None:
        """Replace the line with the stage's outcome."""
        mark = "done" if status == "ok" else status
        self.stream.write(f"\r\x1b[2K{self._index}/{self._total} {stage}: {mark} ({seconds:.1f} s)\n")
        self.stream.flush()


@dataclass(frozen=True)
class StageRecord:
    """Wall time and memory of one report stage.

    ``peak_rss`` is the largest resident set size seen during the stage and
    ``start_rss`` the one when it started (bytes; 0 where not measurable).
    """

    stage: str
    status: str
    seconds: float
    start_rss: int
    peak_rss: int


def _rss() -> int:
    """Current resident set size in bytes (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


class StageTimer:
    """Times a stage; with ``memory=True`` a thread samples RSS every few milliseconds."""

    def __init__(self, memory: bool = False, interval: float = 0.005) -> None:
        self.memory = memory
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.start_rss = 0
        self.peak_rss = 0
        self._t0 = 0.0

    def __enter__(self) -> StageTimer:
        self._t0 = time.perf_counter()
        if self.memory:
            self.start_rss = self.peak_rss = _rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_rss = max(self.peak_rss, _rss())

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak_rss = max(self.peak_rss, _rss())
