"""Benchmark: the full `journeyflow report` on simulated logs, stage by stage.

Usage::

    python benchmarks/bench_report.py                 # 1M and 10M events
    python benchmarks/bench_report.py --sizes 1e6

Writes a simulated log (about 11 events per person) as Parquet into a temporary
folder, times a plain ``pyarrow.parquet.read_table(...).to_pandas()`` of it (the
reference), then runs ``journeyflow report FILE --profile`` in a subprocess and
prints its per-stage table (wall time, peak RSS) and the ratio of the data stages
(everything but charts and html) to the plain read.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

import journeyflow as jf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument("--resamples", type=int, default=200)
    args = ap.parse_args()
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            ev = jf.datasets.simulate_webshop(max(int(size / 11.3), 10), seed=0)
            path = Path(tmp) / "events.parquet"
            ev.to_parquet(path, index=False)
            loaded_mb = ev.memory_usage(deep=True).sum() / 2**20
            n = len(ev)
            del ev
            t0 = time.perf_counter()
            pq.read_table(path).to_pandas()
            read_s = time.perf_counter() - t0
            cfg = Path(tmp) / "r.toml"
            cfg.write_text(f"[attribution]\nn_resamples = {args.resamples}\n", encoding="utf-8")
            res = subprocess.run(
                [sys.executable, "-m", "journeyflow", "report", str(path), "--out", str(Path(tmp) / "out"),
                 "--config", str(cfg), "--profile", "--quiet"],
                capture_output=True, text=True, check=True,
            )
            table = res.stdout + res.stderr
            data_s = 0.0
            for line in table.splitlines():
                parts = line.split()
                if parts and parts[0] not in ("stage", "total", "charts", "html") and len(parts) >= 2:
                    with contextlib.suppress(ValueError):  # header and separator lines
                        data_s += float(parts[1])
            print(f"## {n:,} events (in memory {loaded_mb:,.0f} MB); plain pyarrow read {read_s:.2f} s")
            print(table.strip())
            print(f"data stages {data_s:.2f} s = {data_s / read_s:.1f}x the plain read\n")


if __name__ == "__main__":
    main()
