"""Benchmark: sessionize -> touchpoints -> journeys -> Markov attribution on Dask vs one process.

Usage::

    python benchmarks/bench_dask.py                            # 1M and 10M events
    python benchmarks/bench_dask.py --sizes 1e7 5e7            # the issue's sizes
    python benchmarks/bench_dask.py --sizes 1e8 --memory-limit 4GB

Simulated events are written as Parquet in chunks of ``--chunk`` events (each chunk
simulates its own people, with ids prefixed by the chunk number, so no more than a
chunk is ever in memory), every chunk split into two files at random rows so people
are split across files. The single-process pipeline (``jf.read_events`` and the
in-memory functions) runs for sizes up to ``--single-max``; the Dask pipeline
(``journeyflow.dask``) runs on a LocalCluster of 2 worker processes (1 thread each,
``--memory-limit`` each; Dask spills to disk past its thresholds). Where both ran,
the attribution is checked to be identical (1e-9). Peak memory per worker is the
largest resident set size seen by polling the workers every 0.5 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt_table, machine

import journeyflow as jf


def write_log(folder: Path, size: float, chunk: float) -> int:
    """Simulated events, about ``size`` rows, as Parquet files in ``folder``; rows written."""
    n_chunks = max(1, round(size / chunk))
    users_per_chunk = max(int(size / n_chunks / 11.3), 10)
    total = 0
    rng = np.random.default_rng(0)
    for i in range(n_chunks):
        ev = jf.datasets.simulate_webshop(users_per_chunk, seed=i)
        ev["user_id"] = f"c{i:03d}-" + ev["user_id"].astype(str)
        half = rng.random(len(ev)) < 0.5
        ev[half].to_parquet(folder / f"part-{i:03d}-a.parquet", index=False, row_group_size=250_000)
        ev[~half].to_parquet(folder / f"part-{i:03d}-b.parquet", index=False, row_group_size=250_000)
        total += len(ev)
        del ev
    return total


class WorkerPeak:
    """Polls every worker's RSS in a thread; ``peak`` maps worker -> largest RSS (bytes)."""

    def __init__(self, client: object) -> None:
        self.client = client
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()

    def _rss(self) -> dict[str, int]:
        import psutil

        return self.client.run(lambda: psutil.Process().memory_info().rss)  # type: ignore[attr-defined, no-any-return]

    def __enter__(self) -> WorkerPeak:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for w, rss in self._rss().items():
                    self.peak[w] = max(self.peak.get(w, 0), rss)
            except Exception:  # a worker restarting: keep polling
                pass
            self._stop.wait(0.5)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def single_process(folder: Path) -> tuple[float, object]:
    t0 = time.perf_counter()
    ev = jf.assign_touchpoints(jf.sessionize(jf.read_events(folder)))
    jr = jf.build_journeys(ev)
    del ev
    table = jf.attribute(jr, models=["markov"])
    return time.perf_counter() - t0, table


def on_dask(folder: Path) -> tuple[float, object]:
    import journeyflow.dask as jfd

    t0 = time.perf_counter()
    ddf = jfd.assign_touchpoints(jfd.sessionize(jfd.read_events(str(folder))))
    jr = jfd.build_journeys(ddf)
    table = jfd.attribute(jr, models=["markov"])
    return time.perf_counter() - t0, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument("--chunk", type=float, default=5e6, help="events simulated and written at a time")
    ap.add_argument("--single-max", type=float, default=1e7, help="largest size run in one process")
    ap.add_argument("--memory-limit", default="auto", help="per worker, e.g. 4GB (default: Dask's auto)")
    ap.add_argument("--tmp", default=None, help="folder for the Parquet files (default: system temp)")
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    warnings.simplefilter("ignore", jf.SparseChainWarning)
    rows = []
    single_rate = None
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit=args.memory_limit) as cluster, Client(cluster) as client:
        for size in args.sizes:
            with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
                t0 = time.perf_counter()
                n = write_log(Path(tmp), size, args.chunk)
                print(f"{n:,} events written in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
                table1 = None
                if size <= args.single_max:
                    t_single, table1 = single_process(Path(tmp))
                    single_rate = n / t_single
                    rows.append({"events": f"{n:,}", "implementation": "single process", "seconds": f"{t_single:.1f}",
                                 "events/s": f"{n / t_single / 1e6:.2f}M", "peak RSS per worker": "",
                                 "identical": ""})
                    print(rows[-1], file=sys.stderr, flush=True)
                with WorkerPeak(client) as peaks:
                    t_dask, table2 = on_dask(Path(tmp))
                client.restart()  # free the workers' memory between sizes
                same = ""
                if table1 is not None:
                    x = table1.set_index("channel")["conversions"].sort_index()  # type: ignore[attr-defined]
                    y = table2.set_index("channel")["conversions"].sort_index()  # type: ignore[attr-defined]
                    same = "yes" if np.allclose(x.to_numpy(), y.to_numpy(), rtol=1e-9, atol=1e-9) else "NO"
                peak = max(peaks.peak.values()) if peaks.peak else 0
                rows.append({"events": f"{n:,}", "implementation": f"dask, 2 workers ({args.memory_limit})",
                             "seconds": f"{t_dask:.1f}", "events/s": f"{n / t_dask / 1e6:.2f}M",
                             "peak RSS per worker": f"{peak / 2**30:.1f} GB", "identical": same,
                             "vs single 10M rate": "" if single_rate is None else f"{n / t_dask / single_rate:.2f}"})
                print(rows[-1], file=sys.stderr, flush=True)
    print(machine())
    print(fmt_table(rows, ["events", "implementation", "seconds", "events/s", "peak RSS per worker", "identical",
                           "vs single 10M rate"]))


if __name__ == "__main__":
    main()
