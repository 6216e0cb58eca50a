"""Benchmark: sessionize -> touchpoints -> journeys -> Markov attribution on Dask vs one process.

Usage::

    python benchmarks/bench_dask.py                # 1M and 10M events
    python benchmarks/bench_dask.py --sizes 1e6

Simulated events are written as partitioned Parquet (16 files, rows shuffled so
users are split across files) into a temporary folder. The single-process run
reads them with ``jf.read_events``; the Dask run uses a LocalCluster with 2
worker processes (1 thread each) and ``journeyflow.dask``. Both results are
checked to be identical (attribution to 1e-9).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt_table, machine

import journeyflow as jf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument("--files", type=int, default=16)
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    import journeyflow.dask as jfd

    warnings.simplefilter("ignore", jf.SparseChainWarning)
    rows = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster):
        for size in args.sizes:
            with tempfile.TemporaryDirectory() as tmp:
                ev = jf.datasets.simulate_webshop(max(int(size / 11.3), 10), seed=0)
                ev = ev.sample(frac=1, random_state=0).reset_index(drop=True)
                n = len(ev)
                for i, part in enumerate(np.array_split(np.arange(n), args.files)):
                    ev.iloc[part].to_parquet(Path(tmp) / f"part-{i:03d}.parquet", index=False)
                del ev

                t0 = time.perf_counter()
                single = jf.read_events(tmp)
                single = jf.assign_touchpoints(jf.sessionize(single))
                jr1 = jf.build_journeys(single)
                a1 = jf.attribute(jr1, models=["markov"])
                t_single = time.perf_counter() - t0
                del single

                t0 = time.perf_counter()
                ddf = jfd.assign_touchpoints(jfd.sessionize(jfd.read_events(tmp)))
                jr2 = jfd.build_journeys(ddf)
                a2 = jfd.attribute(jr2, models=["markov"])
                t_dask = time.perf_counter() - t0

                x = a1.set_index("channel")["conversions"].sort_index()
                y = a2.set_index("channel")["conversions"].sort_index()
                assert np.allclose(x.to_numpy(), y.to_numpy(), rtol=1e-9), (x, y)
                for impl, t in (("single process", t_single), ("dask, 2 workers", t_dask)):
                    rows.append({"events": f"{n:,}", "implementation": impl, "seconds": f"{t:.1f}",
                                 "events/s": f"{n / t / 1e6:.2f}M", "throughput vs single": f"{t_single / t:.2f}"})
    print(machine())
    print(fmt_table(rows, ["events", "implementation", "seconds", "events/s", "throughput vs single"]))


if __name__ == "__main__":
    main()
