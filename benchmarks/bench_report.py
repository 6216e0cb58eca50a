"""Benchmark: the full `journeyflow report` on simulated logs, stage by stage.

Usage::

    python benchmarks/bench_report.py                 # 1M and 10M events
    python benchmarks/bench_report.py --sizes 1e6
    python benchmarks/bench_report.py --sizes 1e7 --repeat 3

Writes a simulated log (about 11 events per person) as Parquet into a temporary
folder and flushes it to disk (the kernel's write-back of a file just written slowed
whatever ran next by up to 0.7 s here). Then, ``--repeat`` times in turn: a plain
``pyarrow.parquet.read_table(...).to_pandas()`` of it in a fresh Python process (the
reference, as a user's script would read it) and ``journeyflow report FILE --profile``
in a subprocess. Prints each report's per-stage table (wall time, peak RSS) and the
ratio of its data stages (everything but charts and html) to the median plain read
(and to the fastest one).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import journeyflow as jf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument("--resamples", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=1, help="plain reads and reports, in turn")
    args = ap.parse_args()
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            ev = jf.datasets.simulate_webshop(max(int(size / 11.3), 10), seed=0)
            path = Path(tmp) / "events.parquet"
            ev.to_parquet(path, index=False)
            loaded_mb = ev.memory_usage(deep=True).sum() / 2**20
            n = len(ev)
            del ev
            os.sync()
            cfg = Path(tmp) / "r.toml"
            cfg.write_text(f"[attribution]\nn_resamples = {args.resamples}\n", encoding="utf-8")
            reads, runs = [], []
            for i in range(max(args.repeat, 1)):  # a loop over repeats: a plain read, then a report
                reads.append(_plain_read(path))
                res = subprocess.run(
                    [sys.executable, "-m", "journeyflow", "report", str(path), "--out", str(Path(tmp) / f"out{i}"),
                     "--config", str(cfg), "--profile", "--quiet"],
                    capture_output=True, text=True, check=True,
                )
                runs.append(res.stdout + res.stderr)
            read_s = statistics.median(reads)
            print(f"## {n:,} events (in memory {loaded_mb:,.0f} MB); plain pyarrow read, fresh process: "
                  f"median {read_s:.2f} s, fastest {min(reads):.2f} s ({', '.join(f'{r:.2f}' for r in reads)})")
            for table in runs:
                data_s = _data_seconds(table)
                print(table.strip())
                print(f"data stages {data_s:.2f} s = {data_s / read_s:.1f}x the median plain read "
                      f"({data_s / min(reads):.1f}x the fastest)\n")


def _plain_read(path: Path) -> float:
    """Seconds of ``pq.read_table(path).to_pandas()`` in a fresh Python process."""
    code = (
        "import sys, time, pyarrow.parquet as pq\n"
        "t = time.perf_counter(); pq.read_table(sys.argv[1]).to_pandas(); print(time.perf_counter() - t)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def _data_seconds(table: str) -> float:
    """Seconds of the data stages (all but charts and html) in a ``--profile`` table."""
    total = 0.0
    for line in table.splitlines():
        parts = line.split()
        if parts and parts[0] not in ("stage", "total", "charts", "html") and len(parts) >= 2:
            with contextlib.suppress(ValueError):  # header and separator lines
                total += float(parts[1])
    return total


if __name__ == "__main__":
    main()
